package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
)

// Plane is what every scenario of a command shares: one real control plane (with the garbage
// collector, so Secrets follow their pods as in a cluster), the provisioner binary built once, and
// a folder for logs.
type Plane struct {
	Env *testenv.Env
	Bin string // the provisioner binary
	Dir string // logs of every world, kept after the run for diagnosis
	Log *zap.Logger
}

// StartPlane builds the provisioner binary into dir and starts the control plane. Progress lines
// go to progress (the commands' stderr), so a long run shows where it is.
func StartPlane(dir string, progress io.Writer) (*Plane, error) {
	return StartPlaneWith(dir, progress, testenv.Options{GarbageCollector: true})
}

// StartPlaneWith is StartPlane with the control plane's options (Kueue, for the sharing
// scenario); the garbage collector is always on.
func StartPlaneWith(dir string, progress io.Writer, opts testenv.Options) (*Plane, error) {
	opts.GarbageCollector = true
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("harness folder: %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "provisioner")
	begin := time.Now()
	build := exec.Command("go", "build", "-o", bin, "./cmd/provisioner")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/provisioner: %w\n%s", err, out)
	}
	fmt.Fprintf(progress, "harness: built %s in %s\n", bin, time.Since(begin).Round(time.Second))
	begin = time.Now()
	env, err := testenv.Start(opts)
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	fmt.Fprintf(progress, "harness: control plane ready in %s\n", time.Since(begin).Round(time.Second))
	return &Plane{Env: env, Bin: bin, Dir: dir, Log: progressLogger(progress)}, nil
}

// Stop stops the control plane. The folder (binary, logs) stays.
func (p *Plane) Stop() error { return p.Env.Stop() }

// moduleRoot is the module's root seen from the working directory: `go run ./test/bench` and
// `go test` start in different folders, and the binary must be built from the module root.
func moduleRoot() (string, error) { return testenv.ModuleRoot(".") }

// progressLogger prints the harness's own progress lines, human-readable, at info level.
func progressLogger(w io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zapcore.InfoLevel))
}

// fileLogger writes a component's logs (emulator, simulator) as JSON to a file in a world's folder,
// at warn level: at info the emulator logs every build, which at 1000 builds is noise and I/O.
func fileLogger(path string) (*zap.Logger, func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("creating log %s: %w", path, err)
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(f), zapcore.WarnLevel)
	return zap.New(core), func() { _ = f.Close() }, nil
}
