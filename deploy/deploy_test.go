// Package deploy_test checks the files in deploy/ and the Dockerfile at the
// repository root as written: the Dockerfile's stages, user, ports,
// volume and labels; the Kubernetes manifests, decoded strictly against
// the Kubernetes API types and checked against the Pod Security
// "restricted" profile; the compose file, loaded by the Compose
// Specification's own loader; and every mailfront configuration they hold,
// run through config.Parse, the parser `mailfront validate` uses. It does
// not build or run anything: integration/container_test.go builds the
// binary as the Dockerfile does and runs it as the image would.
package deploy_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/internal/dockerfile"
	"github.com/mailfront/mailfront/internal/testpki"
)

// The image's contract with the compose file and the manifests: the
// binary's path, the user it runs as, the ports it listens on and the
// ACME storage volume (cmd/mailfront's default tls.acme.storage).
const (
	imageBinary  = "/usr/local/bin/mailfront"
	imageUID     = 65532
	imageGID     = 65532
	imageStorage = "/var/lib/mailfront"
	imageConfig  = "/etc/mailfront/mailfront.yaml"
)

// The ports the image listens on inside the container, by listener, and
// the standard ports published to them.
var (
	imagePorts = map[string]int{"imaps": 10993, "pop3s": 10995, "imap": 10143, "pop3": 10110, "admin": 9090}
	// publicPort is the standard port for a listener's protocol and TLS
	// mode (RFC 8314 for implicit TLS, RFC 9051 and RFC 1939 for the
	// STARTTLS ports).
	publicPort = map[[2]string]int{
		{"imap", "implicit"}: 993, {"imap", "starttls"}: 143,
		{"pop3", "implicit"}: 995, {"pop3", "starttls"}: 110,
	}
)

// unprivilegedPortStart is Linux's default net.ipv4.ip_unprivileged_port_start:
// a process without CAP_NET_BIND_SERVICE binds no lower port.
const unprivilegedPortStart = 1024

// readDockerfile reads the Dockerfile at the repository root into stages
// (internal/dockerfile: the reader integration's build uses too).
func readDockerfile(t *testing.T) []dockerfile.Stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := dockerfile.Parse(data)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// execForm decodes an exec-form (JSON array) argument, failing the test on
// the shell form.
func execForm(t *testing.T, in dockerfile.Instruction) []string {
	t.Helper()
	args, err := in.Exec()
	if err != nil {
		t.Errorf("Dockerfile: %v", err)
	}
	return args
}

var labelRE = regexp.MustCompile(`([A-Za-z0-9._-]+)=("(?:[^"\\]|\\.)*"|\S+)`)

// TestDockerfile checks the image the Dockerfile describes: a static
// binary built in the Go image whose version go.mod asks for, on
// distroless as uid/gid 65532, the ACME volume owned by that user, ports
// above 1024, the entry point and command the compose file and the
// manifests rely on, and the OCI labels.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("Dockerfile: got %d stages, want 2 (build, then the image)", len(stages))
	}
	build, final := stages[0], stages[1]
	goVersion := goDirective(t)
	if want := "docker.io/library/golang:" + goVersion + "-bookworm"; build.From != want || build.Name != "build" {
		t.Errorf("Dockerfile: builder is %q AS %q, want %q AS build (the Go go.mod asks for, named in full)", build.From, build.Name, want)
	}
	if want := "gcr.io/distroless/static-debian12:nonroot"; final.From != want {
		t.Errorf("Dockerfile: base is %q, want %q", final.From, want)
	}
	checkBuildLine(t, build)

	users := final.Find("USER")
	if want := strconv.Itoa(imageUID) + ":" + strconv.Itoa(imageGID); len(users) != 1 || users[0].Args != want {
		t.Errorf("Dockerfile: USER %v, want exactly one, %s", users, want)
	}
	var exposed []int
	for _, in := range final.Find("EXPOSE") {
		for _, f := range strings.Fields(in.Args) {
			p, err := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
			if err != nil {
				t.Errorf("Dockerfile:%d: EXPOSE %s is not a TCP port", in.Line, f)
			}
			exposed = append(exposed, p)
		}
	}
	var want []int
	for _, p := range imagePorts {
		want = append(want, p)
	}
	slices.Sort(exposed)
	slices.Sort(want)
	if !slices.Equal(exposed, want) {
		t.Errorf("Dockerfile: EXPOSE %v, want %v (the mail ports and the admin port inside the container)", exposed, want)
	}
	for _, p := range exposed {
		if p < unprivilegedPortStart {
			t.Errorf("Dockerfile: EXPOSE %d: uid %d cannot bind a port below %d", p, imageUID, unprivilegedPortStart)
		}
	}

	vols := final.Find("VOLUME")
	if len(vols) != 1 || !slices.Equal(execForm(t, vols[0]), []string{imageStorage}) {
		t.Errorf("Dockerfile: VOLUME %v, want exactly [%q], tls.acme.storage's default", vols, imageStorage)
	}
	checkCopies(t, final)
	if in := final.Find("ENTRYPOINT"); len(in) != 1 || !slices.Equal(execForm(t, in[0]), []string{imageBinary}) {
		t.Errorf("Dockerfile: ENTRYPOINT %v, want [%q]", in, imageBinary)
	}
	if in := final.Find("CMD"); len(in) != 1 || !slices.Equal(execForm(t, in[0]), []string{"run", "--config", imageConfig}) {
		t.Errorf("Dockerfile: CMD %v, want [run --config %s]", in, imageConfig)
	}
	checkLabels(t, final)
}

// goDirective is go.mod's Go version, major.minor: the builder image's tag.
func goDirective(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	return string(m[1])
}

// checkBuildLine checks the builder's go build: static, trimmed paths,
// and every -X variable declared in cmd/mailfront (the linker ignores one
// that is not, without a word).
func checkBuildLine(t *testing.T, build dockerfile.Stage) {
	t.Helper()
	var line string
	for _, in := range build.Find("RUN") {
		if strings.Contains(in.Args, "go build") {
			line = in.Args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0 ", "-trimpath ", `-ldflags "-s -w `, " ./cmd/mailfront"} {
		if !strings.Contains(line, want) {
			t.Errorf("Dockerfile: the builder's go build %q lacks %q", line, want)
		}
	}
	args := map[string]bool{}
	for _, in := range build.Find("ARG") {
		args[in.Args] = true
	}
	vars := packageStrings(t, filepath.Join("..", "cmd", "mailfront"))
	for _, m := range regexp.MustCompile(`-X main\.(\w+)=\$\{(\w+)\}`).FindAllStringSubmatch(line, -1) {
		if !vars[m[1]] {
			t.Errorf("Dockerfile: -X main.%s, but cmd/mailfront declares no string variable %s", m[1], m[1])
		}
		if !args[m[2]] {
			t.Errorf("Dockerfile: -X main.%s=${%s}, but the builder declares no ARG %s", m[1], m[2], m[2])
		}
	}
	for _, v := range []string{"Version", "Commit", "BuildDate"} {
		if !strings.Contains(line, "-X main."+v+"=") {
			t.Errorf("Dockerfile: the builder's go build does not stamp main.%s", v)
		}
	}
}

// packageStrings returns the package-level variables of the package in dir
// that the linker's -X can set: declared without a value or with a string.
func packageStrings(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				typ, _ := vs.Type.(*ast.Ident)
				for i, n := range vs.Names {
					isString := typ != nil && typ.Name == "string"
					if i < len(vs.Values) {
						lit, ok := vs.Values[i].(*ast.BasicLit)
						isString = isString || ok && lit.Kind == token.STRING
					}
					vars[n.Name] = isString
				}
			}
		}
	}
	return vars
}

// checkCopies checks the image's two files: the binary, and the ACME
// storage directory owned by the image's user (distroless has no shell
// to chown it later).
func checkCopies(t *testing.T, final dockerfile.Stage) {
	t.Helper()
	var binary, storage bool
	for _, in := range final.Find("COPY") {
		f := strings.Fields(in.Args)
		if len(f) != 2 || !slices.Contains(in.Flags, "--from=build") {
			t.Errorf("Dockerfile:%d: COPY %s: want one file from the build stage", in.Line, in.Args)
			continue
		}
		switch f[1] {
		case imageBinary:
			binary = true
		case imageStorage:
			storage = true
			if want := "--chown=" + strconv.Itoa(imageUID) + ":" + strconv.Itoa(imageGID); !slices.Contains(in.Flags, want) {
				t.Errorf("Dockerfile:%d: %s is copied without %s: mailfront could not write its ACME storage", in.Line, imageStorage, want)
			}
		}
	}
	if !binary || !storage {
		t.Errorf("Dockerfile: copies the binary: %v, the storage directory: %v; want both", binary, storage)
	}
}

// checkLabels checks the OCI annotations the image carries
// (opencontainers/image-spec, annotations.md).
func checkLabels(t *testing.T, final dockerfile.Stage) {
	t.Helper()
	labels := map[string]string{}
	for _, in := range final.Find("LABEL") {
		for _, m := range labelRE.FindAllStringSubmatch(in.Args, -1) {
			v, err := strconv.Unquote(m[2])
			if err != nil {
				v = m[2]
			}
			labels[m[1]] = v
		}
	}
	want := map[string]string{
		"org.opencontainers.image.title":    "mailfront",
		"org.opencontainers.image.source":   "https://github.com/mailfront/mailfront",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.version":  "${VERSION}",
		"org.opencontainers.image.revision": "${COMMIT}",
		"org.opencontainers.image.created":  "${BUILD_DATE}",
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("Dockerfile: LABEL %s=%q, want %q", k, labels[k], v)
		}
	}
	if labels["org.opencontainers.image.description"] == "" {
		t.Error("Dockerfile: no org.opencontainers.image.description label")
	}
	args := map[string]bool{}
	for _, in := range final.Find("ARG") {
		args[in.Args] = true
	}
	for _, a := range []string{"VERSION", "COMMIT", "BUILD_DATE"} {
		if !args[a] {
			t.Errorf("Dockerfile: the image dockerfile.Stage does not declare ARG %s, so its label is empty", a)
		}
	}
}

// parsedConfig is a configuration that config.Parse accepted, and its
// warnings.
type parsedConfig struct {
	*config.Config
	warnings []string
}

// parseConfig runs a mailfront configuration found in a deploy file
// through config.Parse. The certificate files it names are not on this
// machine, so each cert_file and key_file is replaced with a pair minted
// for the test; the configuration is otherwise parsed as written.
func parseConfig(t *testing.T, where, text string) parsedConfig {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("%s: the mailfront configuration is not YAML: %v", where, err)
	}
	dir := t.TempDir()
	certFile, keyFile := testpki.NewCA(t).WriteLeaf(t, dir, "mail.example.com")
	replaceValues(&doc, map[string]string{"cert_file": certFile, "key_file": keyFile})
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("%s: mailfront's configuration does not pass config.Parse (mailfront validate):\n%v", where, err)
	}
	// The checks look at the paths as written.
	var written struct {
		TLS struct {
			Certificates []config.Certificate `yaml:"certificates"`
		} `yaml:"tls"`
	}
	if err := yaml.Unmarshal([]byte(text), &written); err != nil || len(written.TLS.Certificates) != len(c.TLS.Certificates) {
		t.Fatalf("%s: tls.certificates: %v", where, err)
	}
	copy(c.TLS.Certificates, written.TLS.Certificates)
	return parsedConfig{Config: c, warnings: c.Warnings()}
}

// replaceValues sets the value of every mapping key in values, at any depth.
func replaceValues(n *yaml.Node, values map[string]string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v, ok := values[n.Content[i].Value]; ok && n.Content[i+1].Kind == yaml.ScalarNode {
				n.Content[i+1].Value = v
			}
		}
	}
	for _, c := range n.Content {
		replaceValues(c, values)
	}
}

// checkWarnings allows only the warning a container setup expects: an
// admin endpoint on every address of the container (its network is
// private; the published port is not).
func checkWarnings(t *testing.T, where string, c parsedConfig) {
	t.Helper()
	for _, w := range c.warnings {
		if !strings.HasPrefix(w, "admin.address: ") {
			t.Errorf("%s: mailfront validate warns: %s", where, w)
		}
	}
}

// checkListeners checks each listener listens on every address of the
// container (so the published port reaches it), on its image port, above
// 1024, and that the admin endpoint is on.
func checkListeners(t *testing.T, where string, c parsedConfig) {
	t.Helper()
	if len(c.Listeners) != 4 {
		t.Errorf("%s: %d listeners, want 4 (IMAP and POP3, each with implicit TLS and STARTTLS)", where, len(c.Listeners))
	}
	for _, l := range c.Listeners {
		host, port := splitPort(t, where, l.Address)
		if host != "" {
			t.Errorf("%s: listener %s on %s: want every address of the container (\":%d\")", where, l.Name, l.Address, port)
		}
		if want, ok := imagePorts[l.Name]; !ok || port != want {
			t.Errorf("%s: listener %s on port %d, want one of the image's ports %v by name", where, l.Name, port, imagePorts)
		}
		if _, ok := publicPort[[2]string{l.Protocol, l.TLS}]; !ok {
			t.Errorf("%s: listener %s is %s %s", where, l.Name, l.Protocol, l.TLS)
		}
	}
	if c.Admin == nil {
		t.Fatalf("%s: no admin endpoint: the health checks need it", where)
	}
	if host, port := splitPort(t, where, c.Admin.Address); host != "" || port != imagePorts["admin"] {
		t.Errorf("%s: admin.address %s, want \":%d\"", where, c.Admin.Address, imagePorts["admin"])
	}
}

// splitPort splits a host:port listen address.
func splitPort(t *testing.T, where, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		t.Errorf("%s: %q is not host:port", where, addr)
	}
	return host, port
}
