// Package platform holds the small contracts through which modules contribute
// to the composed application: routes, health checks and models, gathered
// with fx value groups so that app never calls a module directly.
package platform

import (
	"context"

	"github.com/danielgtaylor/huma/v2"
	"go.uber.org/fx"
)

// Role is the deployment role of the process.
type Role string

// Roles.
const (
	RoleAPI    Role = "api"
	RoleWorker Role = "worker"
	RoleAll    Role = "all"
)

// ServesAPI reports whether the public HTTP API runs in this role.
func (r Role) ServesAPI() bool { return r == RoleAPI || r == RoleAll }

// RunsWorkers reports whether job workers and periodic schedules run.
func (r Role) RunsWorkers() bool { return r == RoleWorker || r == RoleAll }

// Routes registers a module's HTTP operations on the API.
type Routes interface {
	Register(api huma.API)
}

// AsRoutes annotates a constructor whose result implements Routes so that it
// joins the "routes" group.
func AsRoutes(f any) any {
	return fx.Annotate(f, fx.As(new(Routes)), fx.ResultTags(`group:"routes"`))
}

// Check is one readiness check (/health/ready).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// AsCheck annotates a constructor returning a Check so that it joins the
// "checks" group.
func AsCheck(f any) any {
	return fx.Annotate(f, fx.ResultTags(`group:"checks"`))
}

// Models lists the GORM models a module owns; a schema test checks that the
// migrations create every table and column they map.
type Models struct {
	Module string
	List   []any
}

// AsModels annotates a constructor returning Models so that it joins the
// "models" group.
func AsModels(f any) any {
	return fx.Annotate(f, fx.ResultTags(`group:"models"`))
}

// Module is a domain module as the app composes it: its fx options and the
// modules it cannot work without (by name). A module declares its needs; the
// app adds them (and theirs) when it is asked for, and refuses to leave out a
// module that a composed one needs.
type Module struct {
	Name  string
	Needs []string
	// Core modules are part of every composition (authentication, the job
	// queue): they cannot be left out.
	Core bool
	fx.Option
}
