package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseOwner(t *testing.T) {
	tests := []struct {
		in      string
		wantPid int
		wantExe string
		wantOK  bool
	}{
		{in: "1234 /tmp/go-build1/b001/testenv.test\n", wantPid: 1234, wantExe: "/tmp/go-build1/b001/testenv.test", wantOK: true},
		{in: "7 /path with spaces/bin", wantPid: 7, wantExe: "/path with spaces/bin", wantOK: true},
		{in: "", wantOK: false},
		{in: "1234", wantOK: false},
		{in: "1234 ", wantOK: false},
		{in: "0 /bin/x", wantOK: false},
		{in: "-5 /bin/x", wantOK: false},
		{in: "x12 /bin/x", wantOK: false},
	}
	for _, tt := range tests {
		pid, exe, ok := parseOwner(tt.in)
		if diff := cmp.Diff([]any{tt.wantPid, tt.wantExe, tt.wantOK}, []any{pid, exe, ok}); diff != "" {
			t.Errorf("parseOwner(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// FuzzParseOwner checks that parseOwner never accepts a non-positive pid or an empty executable,
// and that what writeOwner writes always parses back to itself.
func FuzzParseOwner(f *testing.F) {
	f.Add("1234 /tmp/go-build1/b001/testenv.test\n")
	f.Add("0 x")
	f.Add(" 12 /a ")
	f.Fuzz(func(t *testing.T, in string) {
		pid, exe, ok := parseOwner(in)
		if !ok {
			return
		}
		if pid <= 0 || exe == "" {
			t.Fatalf("parseOwner(%q) accepted pid %d exe %q", in, pid, exe)
		}
		pid2, exe2, ok2 := parseOwner(strconv.Itoa(pid) + " " + exe + "\n")
		if !ok2 || pid2 != pid || exe2 != exe {
			t.Fatalf("round trip of (%d, %q) gave (%d, %q, %v)", pid, exe, pid2, exe2, ok2)
		}
	})
}

// deadPid returns the pid of a process that has exited and been waited for.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestReapOrphans(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reaping reads /proc, which only Linux has")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// owner returns the owner file's content for a folder whose stand-in component has pid
		// victim; "" writes no owner file.
		owner      func(t *testing.T, victim int) string
		wantReaped bool
	}{
		{
			name:       "owner dead",
			owner:      func(t *testing.T, _ int) string { return strconv.Itoa(deadPid(t)) + " " + self },
			wantReaped: true,
		},
		{
			name: "owner pid recycled by another program",
			// The victim's own pid is alive but runs tail, not the recorded executable.
			owner:      func(t *testing.T, victim int) string { return strconv.Itoa(victim) + " " + self },
			wantReaped: true,
		},
		{
			name:       "owner alive",
			owner:      func(t *testing.T, _ int) string { return strconv.Itoa(os.Getpid()) + " " + self },
			wantReaped: false,
		},
		{
			name:       "no owner file (being created, or stopped and kept for its logs)",
			owner:      func(t *testing.T, _ int) string { return "" },
			wantReaped: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A private TMPDIR, so only this test's folders are candidates.
			t.Setenv("TMPDIR", t.TempDir())
			dir, err := os.MkdirTemp("", dirPattern)
			if err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(dir, logEtcd)
			writeFile(t, logPath, "")
			// The stand-in component: a long-running process naming a path inside the folder,
			// as etcd names --data-dir.
			victim := exec.Command("tail", "-f", logPath)
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- victim.Wait() }()
			t.Cleanup(func() {
				_ = victim.Process.Kill()
				<-exited
			})
			if owner := tt.owner(t, victim.Process.Pid); owner != "" {
				writeFile(t, filepath.Join(dir, ownerFile), owner+"\n")
			}

			reaped := reapOrphans()

			var want []string
			if tt.wantReaped {
				want = []string{dir}
			}
			if diff := cmp.Diff(want, reaped); diff != "" {
				t.Errorf("reaped folders (-want +got):\n%s", diff)
			}
			_, statErr := os.Stat(dir)
			if gone := errors.Is(statErr, os.ErrNotExist); gone != tt.wantReaped {
				t.Errorf("folder removed = %v, want %v (stat: %v)", gone, tt.wantReaped, statErr)
			}
			select {
			case <-exited:
				if !tt.wantReaped {
					t.Errorf("component of a live or unowned folder was killed")
				}
				exited <- nil // for the cleanup
			case <-time.After(settle(tt.wantReaped)):
				if tt.wantReaped {
					t.Errorf("component of an orphaned folder still running %s after the reap", settle(true))
				}
			}
		})
	}
}

// settle is how long to watch the stand-in component after a reap: SIGKILL lands at once, so a
// short look proves it was spared, and a longer one only guards against a loaded machine when it
// must have died.
func settle(wantDead bool) time.Duration {
	if wantDead {
		return 5 * time.Second
	}
	return 300 * time.Millisecond
}
