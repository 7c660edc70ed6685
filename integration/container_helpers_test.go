//go:build integration

package integration

import (
	"bufio"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/dockerfile"
)

// The container tests run mailfront the way its image does, without a
// container engine: none runs here, and the base images cannot be pulled.
// buildImage follows the Dockerfile: it copies the build context as
// .dockerignore filters it, runs the build stage's RUN lines as written
// with the build arguments set, and lays out the image's root
// filesystem: the distroless base's files and the image stage's COPYs,
// with their owners. runImage then runs the image's ENTRYPOINT and CMD as
// its USER in a mount namespace of its own (util-linux's unshare), where
// the root is read-only, /proc and a few device nodes are mounted as a
// runtime mounts them, each VOLUME is a writable directory initialised
// from the image's own (as Docker initialises a new named volume), and
// the files a compose file or a pod would mount are bound read-only. No
// capability survives (setpriv --no-new-privs, then unshare drops to the
// user) and the network is the host's loopback, where the tests' Dovecot,
// Pebble and clients are.

// readDockerfile reads the repository's Dockerfile into stages
// (internal/dockerfile: the reader deploy's tests use too).
func readDockerfile(t *testing.T) []dockerfile.Stage {
	t.Helper()
	data, err := os.ReadFile(repoPath("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := dockerfile.Parse(data)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// containerImage is the Dockerfile's image, laid out on disk.
type containerImage struct {
	rootfs     string
	uid, gid   int
	volumes    []string
	entrypoint []string
	cmd        []string
	binary     string            // the built binary, on the host, as the build stage left it
	args       map[string]string // the build arguments it was built with
}

// imageBuildArgs are the --build-arg values the tests build with, as
// README's docker build command would give them.
var imageBuildArgs = map[string]string{
	"VERSION":    "v0.0.0-container-test",
	"COMMIT":     "0123456789abcdef0123456789abcdef01234567",
	"BUILD_DATE": "2026-01-02T03:04:05Z",
}

// buildImage builds the image in dir.
func buildImage(t *testing.T, dir string) *containerImage {
	t.Helper()
	stages := readDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and the image", len(stages))
	}
	build, final := stages[0], stages[1]
	// The build runs on this machine's Go: it must be the builder
	// image's (golang:1.26-bookworm is the newest 1.26.x).
	m := regexp.MustCompile(`^docker\.io/library/golang:(\d+\.\d+)-bookworm$`).FindStringSubmatch(build.From)
	if m == nil || !strings.HasPrefix(runtime.Version(), "go"+m[1]+".") {
		t.Fatalf("Dockerfile: builder %s; this test builds with %s, which must be that image's Go", build.From, runtime.Version())
	}
	context := filepath.Join(dir, "context")
	copyContext(t, repoPath(""), context)
	src := filepath.Join(dir, "src")
	workdir := runBuildStage(t, build, context, src)
	img := &containerImage{rootfs: filepath.Join(dir, "rootfs"), args: imageBuildArgs}
	writeDistrolessBase(t, img.rootfs)
	layImage(t, img, final, build, workdir, src)
	return img
}

// copyContext copies the repository into dst as .dockerignore filters
// the build context.
func copyContext(t *testing.T, root, dst string) {
	t.Helper()
	ignore := readDockerignore(t, filepath.Join(root, ".dockerignore"))
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && ignore(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copyRegular(p, target, info.Mode().Perm())
		}
		return nil // symlinks and sockets: the repository has none the build needs
	})
	if err != nil {
		t.Fatalf("copy the build context: %v", err)
	}
}

// readDockerignore returns whether .dockerignore excludes a path of the
// context (slash-separated, relative): Docker's rules, anchored at the
// context's root, ** for any number of directories, the last matching
// line deciding and ! re-including; a directory excluded excludes what
// is in it.
func readDockerignore(t *testing.T, file string) func(string) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type rule struct {
		re  *regexp.Regexp
		not bool
	}
	var rules []rule
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		not := strings.HasPrefix(line, "!")
		pat := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(line, "!")), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(pat); i++ {
			switch {
			case strings.HasPrefix(pat[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(pat[i:], "**"):
				re.WriteString(".*")
				i++
			case pat[i] == '*':
				re.WriteString("[^/]*")
			case pat[i] == '?':
				re.WriteString("[^/]")
			case pat[i] == '[' || pat[i] == '\\':
				t.Fatalf(".dockerignore: %q: character classes and escapes are not read by this test", line)
			default:
				re.WriteString(regexp.QuoteMeta(pat[i : i+1]))
			}
		}
		re.WriteString("$")
		rules = append(rules, rule{regexp.MustCompile(re.String()), not})
	}
	return func(rel string) bool {
		excluded := false
		for _, r := range rules {
			// A rule matching rel or any directory above it.
			for p := rel; p != "."; p = path.Dir(p) {
				if r.re.MatchString(p) {
					excluded = !r.not
					break
				}
			}
		}
		return excluded
	}
}

func copyRegular(from, to string, mode fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// runBuildStage does what the build stage does, in src (its WORKDIR):
// its COPYs from the context and its RUN lines, each through sh -c as
// written, with the build arguments in the environment (as Docker sets
// them) and the golang image's GOTOOLCHAIN=local. Cache mounts change
// nothing a build produces, so they are left out; any other RUN flag
// fails the test. It returns the stage's WORKDIR.
func runBuildStage(t *testing.T, build dockerfile.Stage, context, src string) string {
	t.Helper()
	workdir := ""
	env := []string{
		"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + os.Getenv("HOME"),
		"GOTOOLCHAIN=local",
		// This machine's caches, so the build is not from scratch; they
		// change how long it takes, not what it makes.
		"GOCACHE=" + goEnv(t, "GOCACHE"),
		"GOMODCACHE=" + goEnv(t, "GOMODCACHE"),
		"GOPROXY=" + goEnv(t, "GOPROXY"),
	}
	for _, in := range build.Instructions {
		switch in.Cmd {
		case "WORKDIR":
			workdir = in.Args
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
		case "COPY":
			f := strings.Fields(in.Args)
			if len(in.Flags) > 0 || workdir == "" || len(f) < 2 || (f[len(f)-1] != "." && f[len(f)-1] != "./") {
				t.Fatalf("Dockerfile:%d: COPY %s: this test copies sources from the context into the WORKDIR only", in.Line, in.Args)
			}
			for _, s := range f[:len(f)-1] {
				if s == "." {
					copyContext(t, context, src)
					continue
				}
				info, err := os.Stat(filepath.Join(context, s))
				if err != nil {
					t.Fatalf("Dockerfile:%d: COPY %s: %v (excluded by .dockerignore?)", in.Line, s, err)
				}
				if err := copyRegular(filepath.Join(context, s), filepath.Join(src, s), info.Mode().Perm()); err != nil {
					t.Fatal(err)
				}
			}
		case "ARG":
			env = append(env, in.Args+"="+imageBuildArgs[in.Args])
		case "RUN":
			for _, f := range in.Flags {
				if !strings.HasPrefix(f, "--mount=type=cache,") {
					t.Fatalf("Dockerfile:%d: RUN %s: this test runs no RUN flag but cache mounts", in.Line, f)
				}
			}
			cmd := exec.Command("/bin/sh", "-c", in.Args)
			cmd.Dir, cmd.Env = src, env
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("Dockerfile:%d: RUN %s: %v\n%s", in.Line, in.Args, err, out)
			}
			t.Logf("Dockerfile:%d: RUN %s (%v)", in.Line, strings.Join(strings.Fields(in.Args), " "), time.Since(start).Round(time.Millisecond))
		default:
			t.Fatalf("Dockerfile:%d: %s in the build stage, which this test does not run", in.Line, in.Cmd)
		}
	}
	return workdir
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// writeDistrolessBase writes what the image's base,
// gcr.io/distroless/static-debian12:nonroot, holds that mailfront could
// use: the user and group files (nonroot is 65532), the CA certificates,
// /tmp (1777) and the user's home. Nothing else: no shell, no libc.
func writeDistrolessBase(t *testing.T, root string) {
	t.Helper()
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":      "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n",
		"etc/os-release": "PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"12\"\n",
	}
	for name, content := range files {
		writeFileMode(t, filepath.Join(root, name), content, 0o644)
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the CA certificates (apt-get install ca-certificates): %v", err)
	}
	writeFileMode(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), string(ca), 0o644)
	mkdirOwned(t, filepath.Join(root, "tmp"), fs.ModeSticky|0o777, 0, 0)
	mkdirOwned(t, filepath.Join(root, "home/nonroot"), 0o700, 65532, 65532)
	// Mount points a container runtime fills.
	mkdirOwned(t, filepath.Join(root, "proc"), 0o555, 0, 0)
	for _, d := range runtimeDevices {
		writeFileMode(t, filepath.Join(root, "dev", d), "", 0o666)
	}
}

// runtimeDevices are the device nodes bound into the container, a subset
// of what every runtime provides.
var runtimeDevices = []string{"null", "zero", "urandom"}

// layImage does the image stage: each COPY --from the build stage (with
// its --chown), then USER, VOLUME, ENTRYPOINT and CMD as the run reads
// them.
// src is the build stage's WORKDIR on the host.
func layImage(t *testing.T, img *containerImage, final, build dockerfile.Stage, workdir, src string) {
	t.Helper()
	for _, in := range final.Instructions {
		switch in.Cmd {
		case "COPY":
			f := strings.Fields(in.Args)
			if !slices.Contains(in.Flags, "--from="+build.Name) || len(f) != 2 {
				t.Fatalf("Dockerfile:%d: COPY %s: this test copies one path from the build stage", in.Line, in.Args)
			}
			rel, ok := strings.CutPrefix(f[0], workdir+"/")
			if !ok {
				t.Fatalf("Dockerfile:%d: COPY %s: not from the build stage's WORKDIR %s", in.Line, f[0], workdir)
			}
			uid, gid := -1, -1
			for _, fl := range in.Flags {
				if own, ok := strings.CutPrefix(fl, "--chown="); ok {
					uid, gid = parseUser(t, in, own)
				}
			}
			from, to := filepath.Join(src, rel), filepath.Join(img.rootfs, f[1])
			if f[1] == "/usr/local/bin/mailfront" {
				img.binary = from
			}
			copyOwnedTree(t, from, to, uid, gid)
		case "USER":
			img.uid, img.gid = parseUser(t, in, in.Args)
		case "VOLUME":
			img.volumes = dfExec(t, in)
		case "ENTRYPOINT":
			img.entrypoint = dfExec(t, in)
		case "CMD":
			img.cmd = dfExec(t, in)
		case "ARG", "LABEL", "EXPOSE":
		default:
			t.Fatalf("Dockerfile:%d: %s in the image stage, which this test does not lay out", in.Line, in.Cmd)
		}
	}
	if img.binary == "" || len(img.entrypoint) == 0 || img.uid == 0 {
		t.Fatalf("Dockerfile: binary %q, entry point %q, user %d: want the binary at /usr/local/bin/mailfront run by a non-root user", img.binary, img.entrypoint, img.uid)
	}
}

func parseUser(t *testing.T, in dockerfile.Instruction, s string) (int, int) {
	t.Helper()
	u, g, _ := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		t.Fatalf("Dockerfile:%d: %q: want numeric uid:gid", in.Line, s)
	}
	return uid, gid
}

func dfExec(t *testing.T, in dockerfile.Instruction) []string {
	t.Helper()
	v, err := in.Exec()
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return v
}

// copyOwnedTree copies a file or a directory tree, keeping modes, owned by
// uid:gid when they are not -1 (COPY --chown), else by root.
func copyOwnedTree(t *testing.T, from, to string, uid, gid int) {
	t.Helper()
	if uid < 0 {
		uid, gid = 0, 0
	}
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
		} else if err := copyRegular(p, target, info.Mode().Perm()); err != nil {
			return err
		}
		if err := os.Chown(target, uid, gid); err != nil {
			return err
		}
		return os.Chmod(target, info.Mode().Perm()) // not the umask's
	})
	if err != nil {
		t.Fatalf("COPY %s: %v", from, err)
	}
}

func writeFileMode(t *testing.T, file, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
}

func mkdirOwned(t *testing.T, dir string, mode fs.FileMode, uid, gid int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// checkStaticBuild checks the binary is what the Dockerfile's build line
// asks for, from its ELF headers and what Go recorded in it: static (no
// interpreter, no shared library), stripped (-ldflags -s), built with
// CGO_ENABLED=0 and -trimpath. (Go records no -ldflags with -trimpath;
// the "version" test checks the -X values in the binary's output.)
func checkStaticBuild(t *testing.T, img *containerImage) {
	t.Helper()
	f, err := elf.Open(img.binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	if f.Section(".interp") != nil || len(libs) > 0 {
		t.Errorf("the binary is dynamically linked (%q): the image has no C library", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s did not reach the linker")
	}
	bi, err := buildinfo.ReadFile(img.binary)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != v {
			t.Errorf("the binary records %s=%q, want %q", k, settings[k], v)
		}
	}
	if bi.Path != "github.com/mailfront/mailfront/cmd/mailfront" {
		t.Errorf("the binary is %s, want cmd/mailfront", bi.Path)
	}
}

// roBind is a host file or directory mounted read-only in the container.
type roBind struct {
	host, target string
}

// imageRun is how one run of the image is set up.
type imageRun struct {
	binds []roBind
	// volume is the host directory mounted at the image's VOLUME; empty:
	// a new one, initialised from the image's directory.
	volume string
	// argv replaces ENTRYPOINT and CMD (a healthcheck's CMD); args
	// replaces only CMD.
	argv, args []string
}

// launcher is the shell script run in a new mount namespace (unshare
// --mount): the mounts, then the drop to the image's user and the exec.
// Its arguments are the image's root, then pairs of volume host
// directories and targets, "--", pairs of read-only binds, "--", and the
// command.
const launcher = `set -eu
root=$1; shift
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
for d in null zero urandom; do mount --bind "/dev/$d" "$root/dev/$d"; done
while [ "$1" != -- ]; do mount --bind "$1" "$root$2"; shift 2; done; shift
while [ "$1" != -- ]; do mount --bind "$1" "$root$2"; mount -o remount,bind,ro "$root$2"; shift 2; done; shift
mount -o remount,bind,ro "$root"
uid=$1 gid=$2; shift 2
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/nonroot \
	SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
	setpriv --no-new-privs -- unshare --root="$root" --wd=/ --setgid="$gid" --setuid="$uid" -- "$@"
`

// command is the command line that runs the image as r says.
func (img *containerImage) command(t *testing.T, r imageRun) []string {
	t.Helper()
	tool(t, "unshare", "util-linux")
	tool(t, "setpriv", "util-linux")
	argv := r.argv
	if argv == nil {
		args := r.args
		if args == nil {
			args = img.cmd
		}
		argv = append(slices.Clone(img.entrypoint), args...)
	}
	line := []string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", launcher, "launcher", img.rootfs}
	for _, v := range img.volumes {
		line = append(line, r.volume, v)
	}
	line = append(line, "--")
	for _, b := range r.binds {
		img.mountPoint(t, b)
		line = append(line, b.host, b.target)
	}
	line = append(line, "--", strconv.Itoa(img.uid), strconv.Itoa(img.gid))
	return append(line, argv...)
}

// mountPoint makes the file or directory a bind is mounted on, as a
// runtime makes it in the container's top layer.
func (img *containerImage) mountPoint(t *testing.T, b roBind) {
	t.Helper()
	info, err := os.Stat(b.host)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(img.rootfs, b.target)
	if info.IsDir() {
		mkdirOwned(t, target, 0o755, 0, 0)
	} else if _, err := os.Stat(target); err != nil {
		writeFileMode(t, target, "", 0o644)
	}
}

// newVolume makes a directory for the image's VOLUME the way Docker
// initialises a new named volume: with the owner and mode of the image's
// directory.
func (img *containerImage) newVolume(t *testing.T) string {
	t.Helper()
	if len(img.volumes) != 1 {
		t.Fatalf("the image has volumes %q, want one", img.volumes)
	}
	info, err := os.Stat(filepath.Join(img.rootfs, img.volumes[0]))
	if err != nil {
		t.Fatalf("the image has no %s for its VOLUME: %v", img.volumes[0], err)
	}
	st := info.Sys().(*syscall.Stat_t)
	dir := filepath.Join(t.TempDir(), "volume")
	mkdirOwned(t, dir, info.Mode().Perm(), int(st.Uid), int(st.Gid))
	return dir
}

// imageContainer is a running image.
type imageContainer struct {
	*front
	volume string
}

// startImage runs the image in the background until the test ends, its
// output in a log file, and checks it exits 0 after SIGTERM when
// wantExit0 is set.
func startImage(t *testing.T, img *containerImage, r imageRun, wantExit0 bool) *imageContainer {
	t.Helper()
	if r.volume == "" {
		r.volume = img.newVolume(t)
	}
	dir := t.TempDir()
	c := &imageContainer{
		front:  &front{log: logFile{filepath.Join(dir, "mailfront.log")}, exited: make(chan struct{})},
		volume: r.volume,
	}
	line := img.command(t, r)
	c.pid = startGroup(t, "mailfront (image)", c.log.path, c.exited, func(cmd *exec.Cmd) {
		if code := cmd.ProcessState.ExitCode(); wantExit0 && code != 0 {
			t.Errorf("mailfront (image) exit code after SIGTERM: got %d, want 0", code)
		}
		logs := c.log.String()
		if strings.Contains(logs, testPassword) {
			t.Errorf("mailfront's log contains the password")
		}
		if t.Failed() {
			t.Logf("mailfront (image) log:\n%s", logs)
		}
	}, line...)
	return c
}

// runInImage runs argv to completion in a new container of the image
// (a healthcheck's CMD, mailfront version) and returns what it did.
func runInImage(t *testing.T, img *containerImage, binds []roBind, argv ...string) result {
	t.Helper()
	line := img.command(t, imageRun{binds: binds, volume: img.newVolume(t), argv: argv})
	return runClient(t, nil, nil, line[0], line[1:]...)
}

// procStatus reads the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			st[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return st
}

// checkCredentials checks the process runs as the image's user with no
// capability to use and no way to gain one, in a mount namespace other
// than the test's.
func checkCredentials(t *testing.T, img *containerImage, pid int) {
	t.Helper()
	st := procStatus(t, pid)
	u, g := strconv.Itoa(img.uid), strconv.Itoa(img.gid)
	want := map[string]string{
		"Uid": strings.Repeat(u+" ", 3) + u, "Gid": strings.Repeat(g+" ", 3) + g,
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000", "CapAmb": "0000000000000000",
		"NoNewPrivs": "1",
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("/proc/%d/status %s: got %q, want %q", pid, k, st[k], v)
		}
	}
	if groups := st["Groups"]; groups != "" && groups != g {
		t.Errorf("/proc/%d/status Groups: got %q, want none but %s", pid, groups, g)
	}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); ns == self {
		t.Errorf("pid %d shares the test's mount namespace %s", pid, ns)
	}
	if root, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); root != img.rootfs {
		t.Errorf("pid %d's root is %q, want the image's %s", pid, root, img.rootfs)
	}
}

// checkOwnedBy checks every file under dir belongs to uid:gid and that
// none of the keys is readable by others.
func checkOwnedBy(t *testing.T, dir string, uid, gid int) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s belongs to %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		if !d.IsDir() {
			n++
			if strings.HasSuffix(p, ".key") && info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is a key with mode %v", p, info.Mode().Perm())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
