package cluster

import (
	"fmt"

	"github.com/weftmesh/weft/internal/mountinfo"
)

// unmountUnder lazily unmounts every mount point below dir (deepest first), so removing dir
// never recurses into a bind mount of host files left by a crashed node agent.
func unmountUnder(dir string) error {
	if err := mountinfo.UnmountUnder(dir); err != nil {
		return fmt.Errorf("refusing to remove %s: %w", dir, err)
	}
	return nil
}
