package bundle

import (
	"fmt"
	"slices"
)

// A Policy is what a device checks of a trusted manifest before installing
// it. The zero Policy checks nothing; an installer must set both fields.
type Policy struct {
	// DeviceType, if set, must be one of the manifest's device types.
	DeviceType string
	// InstalledCounter, if set, is the release counter of the running
	// release; a manifest with a lower counter is a downgrade. An equal
	// counter is a reinstall of the same release line and is allowed.
	InstalledCounter uint64
}

// Check returns ErrIncompatible or ErrDowngrade, wrapped with the values that
// decided it, or nil if m may be installed.
func (p Policy) Check(m *Manifest) error {
	if p.DeviceType != "" && !slices.Contains(m.DeviceTypes, p.DeviceType) {
		return fmt.Errorf("%w: device type %q is not among the bundle's %q", ErrIncompatible, p.DeviceType, m.DeviceTypes)
	}
	if m.Counter < p.InstalledCounter {
		return fmt.Errorf("%w: release counter %d (version %s) is lower than the installed %d", ErrDowngrade, m.Counter, m.Version, p.InstalledCounter)
	}
	return nil
}
