package runtime

import (
	"os/exec"
	goruntime "runtime"
	"sync"
)

// The kernel delivers PR_SET_PDEATHSIG when the *thread* that forked the child exits, not the
// process. Go exits OS threads whose goroutine ends while locked (code working with network
// namespaces does this on purpose), so container launchers are forked from one dedicated
// thread that stays alive for the life of the process.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// startOnSpawner runs cmd.Start on the dedicated spawner thread.
func startOnSpawner(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			goruntime.LockOSThread() // never unlocked: this goroutine and its thread live forever
			for r := range spawnReqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- spawnReq{cmd: cmd, errc: errc}
	return <-errc
}
