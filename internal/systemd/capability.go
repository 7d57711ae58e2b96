package systemd

import (
	"context"
	"errors"
	"fmt"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/plan"
)

// StepServices is the services: step's name, a key of the per-instance
// records: never rename it.
const StepServices = "services"

// Services is the services: capability.
type Services struct{}

// Name implements capability.Capability.
func (Services) Name() string { return StepServices }

// Steps implements capability.Capability: one per-instance step with an
// action per unit (and, when systemd runs the root, one that activates
// them).
func (Services) Steps(ctx context.Context, in *capability.Input) ([]*plan.Step, error) {
	if len(in.Config.Services) == 0 {
		return nil, nil
	}
	units := make([]Unit, 0, len(in.Config.Services))
	for _, s := range in.Config.Services {
		u, err := FromConfig(s)
		if err != nil {
			return nil, badinput.Wrap(err)
		}
		units = append(units, u)
	}
	actions, err := Actions(in.Root, units...)
	var le *linkError
	if errors.As(err, &le) {
		// The unit on the root cannot be enabled as asked (masked, an
		// alias, a template without DefaultInstance): the operator's to fix.
		return nil, badinput.Wrap(in.Config.Errorf(fmt.Sprintf("services[%d].enabled", le.index), "%v", le.err))
	}
	if err != nil {
		return nil, err
	}
	return []*plan.Step{{Name: StepServices, Frequency: plan.PerInstance, Done: in.IsDone(StepServices), Actions: actions}}, nil
}
