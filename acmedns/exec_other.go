//go:build !unix

package acmedns

import "os/exec"

// killGroup leaves exec.CommandContext's default, killing the hook's
// process only; execWaitDelay bounds the wait for its children's pipes.
func killGroup(*exec.Cmd) {}
