package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mailfront/mailfront/proxy"
)

// loadCompose loads compose.yaml with the Compose Specification's own
// loader (compose-go, which docker compose uses): it checks the file
// against the specification's schema, so an unknown key or a value of the
// wrong type is an error.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithWorkingDirectory("."), cli.WithName("mailfront"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	return p
}

// TestCompose checks compose.yaml and the configuration it mounts: the
// image is built from the root Dockerfile; the legacy server is published
// nowhere and reached on an internal network only; each listener is
// published on its standard port and the admin endpoint on the host's
// loopback only; the container runs read-only, without capabilities or a
// way to gain privileges; the healthcheck asks mailfront itself (the
// image has no shell); the certificates come read-only from where the
// certbot deploy hook puts them; and the configuration passes
// config.Parse.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	mf, ok := p.Services["mailfront"]
	if !ok {
		t.Fatal("deploy/compose.yaml: no mailfront service")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if mf.Build == nil || mf.Build.Context != root || (mf.Build.Dockerfile != "" && mf.Build.Dockerfile != "Dockerfile") {
		t.Errorf("deploy/compose.yaml: mailfront is built from %+v, want the repository root's Dockerfile", mf.Build)
	}
	if len(mf.Entrypoint) > 0 || (mf.User != "" && mf.User != strconv.Itoa(imageUID)+":"+strconv.Itoa(imageGID)) {
		t.Errorf("deploy/compose.yaml: entrypoint %q, user %q: keep the image's", mf.Entrypoint, mf.User)
	}
	confPath := imageConfig
	if len(mf.Command) > 0 {
		i := slices.Index(mf.Command, "--config")
		if mf.Command[0] != "run" || i < 0 || i+1 >= len(mf.Command) {
			t.Fatalf("deploy/compose.yaml: command %q: want run --config FILE", mf.Command)
		}
		confPath = mf.Command[i+1]
	}
	vol := composeVolume(mf, confPath)
	if want := filepath.Join(root, "deploy", "compose-mailfront.yaml"); vol == nil || vol.Source != want || !vol.ReadOnly {
		t.Fatalf("deploy/compose.yaml: %s is not mounted read-only from %s (%+v)", confPath, want, vol)
	}
	text, err := os.ReadFile(vol.Source)
	if err != nil {
		t.Fatal(err)
	}
	const where = "deploy/compose-mailfront.yaml"
	cfg := parseConfig(t, where, string(text))
	checkListeners(t, where, cfg)
	checkWarnings(t, where, cfg)

	checkComposePorts(t, mf, cfg)
	checkComposeSecurity(t, mf)
	checkHealthcheck(t, mf, cfg)
	checkComposeCertificates(t, mf, cfg)
	checkLegacy(t, p, mf, cfg)

	drain := cfg.Shutdown.Drain
	if drain == 0 {
		drain = proxy.DefaultDrain
	}
	if mf.StopGracePeriod == nil || time.Duration(*mf.StopGracePeriod) <= drain {
		t.Errorf("deploy/compose.yaml: stop_grace_period %v is not more than shutdown.drain %v: sessions would be killed, not told", mf.StopGracePeriod, drain)
	}
}

// composeVolume returns the service's volume whose target holds path.
func composeVolume(s types.ServiceConfig, path string) *types.ServiceVolumeConfig {
	for i := range s.Volumes {
		v := &s.Volumes[i]
		if v.Target == path || strings.HasPrefix(path, strings.TrimSuffix(v.Target, "/")+"/") {
			return v
		}
	}
	return nil
}

// checkComposePorts checks each listener is published on its standard
// port on every host address, the admin endpoint on the host's loopback
// only, and nothing else.
func checkComposePorts(t *testing.T, mf types.ServiceConfig, cfg parsedConfig) {
	t.Helper()
	listener := map[uint32]string{}
	for _, l := range cfg.Listeners {
		_, p := splitPort(t, "deploy/compose-mailfront.yaml", l.Address)
		listener[uint32(p)] = l.Name
	}
	_, admin := splitPort(t, "deploy/compose-mailfront.yaml", cfg.Admin.Address)
	published := map[string]string{}
	for _, p := range mf.Ports {
		if p.Target < unprivilegedPortStart {
			t.Errorf("deploy/compose.yaml: container port %d: uid %d cannot bind below %d", p.Target, imageUID, unprivilegedPortStart)
		}
		switch name, ok := listener[p.Target]; {
		case ok:
			if p.HostIP != "" {
				t.Errorf("deploy/compose.yaml: listener %s is published on %s only", name, p.HostIP)
			}
			published[name] = p.Published
		case p.Target == uint32(admin):
			if p.HostIP != "127.0.0.1" {
				t.Errorf("deploy/compose.yaml: the admin endpoint is published on %q, want 127.0.0.1 only: it has no authentication", p.HostIP)
			}
		default:
			t.Errorf("deploy/compose.yaml: container port %d is no listener's and not the admin endpoint", p.Target)
		}
	}
	for _, l := range cfg.Listeners {
		if want := strconv.Itoa(publicPort[[2]string{l.Protocol, l.TLS}]); published[l.Name] != want {
			t.Errorf("deploy/compose.yaml: listener %s (%s %s) is published on %q, want %s", l.Name, l.Protocol, l.TLS, published[l.Name], want)
		}
	}
}

// checkComposeSecurity checks what Docker can enforce of Pod Security
// "restricted": a read-only root, no capabilities, no privilege gain.
func checkComposeSecurity(t *testing.T, mf types.ServiceConfig) {
	t.Helper()
	if !mf.ReadOnly {
		t.Error("deploy/compose.yaml: read_only is not true")
	}
	if !slices.Equal(mf.CapDrop, []string{"ALL"}) || len(mf.CapAdd) > 0 || mf.Privileged {
		t.Errorf("deploy/compose.yaml: cap_drop %q, cap_add %q, privileged %v: want all dropped and none added", mf.CapDrop, mf.CapAdd, mf.Privileged)
	}
	if !slices.Contains(mf.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("deploy/compose.yaml: security_opt %q lacks no-new-privileges:true", mf.SecurityOpt)
	}
}

// checkHealthcheck checks the healthcheck runs the image's binary
// directly (exec form: the image has no shell) and asks /healthz where the
// configuration puts the admin endpoint.
func checkHealthcheck(t *testing.T, mf types.ServiceConfig, cfg parsedConfig) {
	t.Helper()
	hc := mf.HealthCheck
	if hc == nil || hc.Disable {
		t.Fatal("deploy/compose.yaml: mailfront has no healthcheck")
	}
	_, admin := splitPort(t, "deploy/compose-mailfront.yaml", cfg.Admin.Address)
	url := "http://127.0.0.1:" + strconv.Itoa(admin) + "/healthz"
	if want := []string{"CMD", imageBinary, "health", url}; !slices.Equal(hc.Test, want) {
		t.Errorf("deploy/compose.yaml: healthcheck test %q, want %q", hc.Test, want)
	}
	if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
		t.Errorf("deploy/compose.yaml: healthcheck interval, timeout and retries: want each set")
	}
}

// hookDefaults are the certbot deploy hook's defaults: where it copies
// the certificates and the group it gives them.
var hookDefaults = regexp.MustCompile(`(?m)^dest=\$\{MAILFRONT_CERTS:-(\S+)\}\ngid=\$\{MAILFRONT_GID:-(\d+)\}$`)

// checkComposeCertificates checks every certificate file the
// configuration names is in a read-only volume, the one the certbot
// deploy hook writes to with the image's group, in the hook's layout
// (DIR/NAME/fullchain.pem and privkey.pem).
func checkComposeCertificates(t *testing.T, mf types.ServiceConfig, cfg parsedConfig) {
	t.Helper()
	hook, err := os.ReadFile("compose-certbot-deploy-hook")
	if err != nil {
		t.Fatal(err)
	}
	m := hookDefaults.FindStringSubmatch(string(hook))
	if m == nil {
		t.Fatalf("deploy/compose-certbot-deploy-hook: no dest= and gid= defaults matching %q", hookDefaults)
	}
	dest, gid := m[1], m[2]
	if gid != strconv.Itoa(imageGID) {
		t.Errorf("deploy/compose-certbot-deploy-hook: group %s, want the image's %d", gid, imageGID)
	}
	if len(cfg.TLS.Certificates) == 0 {
		t.Error("deploy/compose-mailfront.yaml: no certificate files")
	}
	for i, c := range cfg.TLS.Certificates {
		for _, f := range []string{c.CertFile, c.KeyFile} {
			v := composeVolume(mf, f)
			if v == nil || !v.ReadOnly || v.Type != types.VolumeTypeBind {
				t.Errorf("deploy/compose-mailfront.yaml: tls.certificates[%d]: %s is in no read-only bind mount", i, f)
				continue
			}
			host := filepath.Join(v.Source, strings.TrimPrefix(f, v.Target))
			if filepath.Dir(filepath.Dir(host)) != dest {
				t.Errorf("deploy/compose-mailfront.yaml: tls.certificates[%d]: %s is %s on the host, not in %s/NAME where the deploy hook writes", i, f, host, dest)
			}
		}
		if filepath.Base(c.CertFile) != "fullchain.pem" || filepath.Base(c.KeyFile) != "privkey.pem" {
			t.Errorf("deploy/compose-mailfront.yaml: tls.certificates[%d]: the deploy hook writes fullchain.pem and privkey.pem", i)
		}
	}
}

// checkLegacy checks the legacy server is published nowhere, is on an
// internal network only, and that mailfront reaches it there by its
// service name.
func checkLegacy(t *testing.T, p *types.Project, mf types.ServiceConfig, cfg parsedConfig) {
	t.Helper()
	legacy, ok := p.Services["legacy-mail"]
	if !ok {
		t.Fatal("deploy/compose.yaml: no legacy-mail service")
	}
	if len(legacy.Ports) > 0 {
		t.Errorf("deploy/compose.yaml: the plaintext server publishes %v", legacy.Ports)
	}
	for n := range legacy.Networks {
		if net, ok := p.Networks[n]; !ok || !net.Internal {
			t.Errorf("deploy/compose.yaml: legacy-mail is on network %s, which is not internal", n)
		}
		if _, ok := mf.Networks[n]; !ok {
			t.Errorf("deploy/compose.yaml: mailfront is not on legacy-mail's network %s", n)
		}
	}
	if len(legacy.Networks) == 0 {
		t.Error("deploy/compose.yaml: legacy-mail is on the default network, which is not internal")
	}
	for _, l := range cfg.Listeners {
		if !strings.HasPrefix(l.Backend, "legacy-mail:") {
			t.Errorf("deploy/compose-mailfront.yaml: listener %s's backend is %s, not the legacy-mail service", l.Name, l.Backend)
		}
	}
}
