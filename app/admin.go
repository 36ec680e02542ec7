package app

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/modules/account"
	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/database"
)

// The users commands work on a running deployment's database through the
// modules' faces: the same rules, events and activity as the routes (the
// source is "system"). They compose the modules without starting anything:
// no listener, no job worker.

// admin is the composed modules' faces the users commands use.
type admin struct {
	accounts auth.Accounts
	plans    billing.Plans
	erasure  account.Accounts
	stop     func()
}

func (c *cli) admin() (*admin, error) {
	cfg, err := c.load()
	if err != nil {
		return nil, err
	}
	if problems := Check(cfg, platform.RoleWorker); len(problems) > 0 {
		return nil, refused(problems)
	}
	a := &admin{}
	var db *database.DB
	opts := []fx.Option{fx.Populate(&a.accounts, &a.plans, &a.erasure, &db)}
	if cfg.Log.Level != "debug" {
		// The command's output is what it changed; the server's logs stay quiet.
		opts = append(opts, fx.Replace(zap.NewNop()), fx.NopLogger)
	}
	app := fx.New(Compose(cfg, platform.RoleWorker, nil, opts...))
	if err := app.Err(); err != nil {
		return nil, StartError(err)
	}
	a.stop = func() { _ = db.Close() }
	list, err := migrations.Status(context.Background(), db)
	if err != nil {
		a.stop()
		return nil, err
	}
	for _, m := range list {
		if !m.Applied {
			a.stop()
			return nil, fmt.Errorf("the database lacks migration %s: run perpetua migrate first", m.ID)
		}
	}
	return a, nil
}

// userView is a user as the users commands print it.
type userView struct {
	ID             string     `json:"id"`
	Email          string     `json:"email"`
	Name           string     `json:"name"`
	Tier           string     `json:"tier"`
	Timezone       string     `json:"timezone"`
	CreatedAt      time.Time  `json:"created_at"`
	ActiveSessions int        `json:"active_sessions"`
	LastSeenAt     *time.Time `json:"last_seen_at"`
}

func toUserView(u auth.UserInfo) userView {
	return userView{ID: u.ID.String(), Email: u.Email, Name: u.Name, Tier: u.Tier, Timezone: u.Timezone,
		CreatedAt: u.CreatedAt, ActiveSessions: u.ActiveSessions, LastSeenAt: u.LastSeenAt}
}

// planView is a user's plan and balance as the users commands print them.
type planView struct {
	Tier               string     `json:"tier"`
	SubscriptionStatus string     `json:"subscription_status"`
	ProUntil           *time.Time `json:"pro_until"`
	Credits            creditView `json:"credits"`
}

type creditView struct {
	Daily        int `json:"daily"`
	Subscription int `json:"subscription"`
	Purchased    int `json:"purchased"`
	Kickstart    int `json:"kickstart"`
	Granted      int `json:"granted"`
	Total        int `json:"total"`
}

func toCreditView(b billing.Balance) creditView {
	return creditView{Daily: b.Daily, Subscription: b.Subscription, Purchased: b.Purchased, Kickstart: b.Kickstart,
		Granted: b.Granted, Total: b.Total()}
}

func toPlanView(p *billing.Plan) planView {
	return planView{Tier: p.Tier, SubscriptionStatus: p.Status, ProUntil: p.Until, Credits: toCreditView(p.Balance)}
}

func (c *cli) usersCommand() *cobra.Command {
	users := &cobra.Command{
		Use:   "users",
		Short: "Operator commands on users (list, show, set-tier, grant-credits, revoke-sessions, erase)",
		Long: "Operator commands on users, run against the configured database (a running deployment's\n" +
			"PostgreSQL too). Each change goes through the modules' rules and events, as the API's own\n" +
			"changes do, and prints what it changed; --json prints it for scripts. A user is named by\n" +
			"id or email.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	users.PersistentFlags().BoolVar(&c.asJSON, "json", false, "print JSON")

	var limit, offset int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List users, newest first",
		Example: "  perpetua users list --limit 20",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			if limit < 1 || limit > 1000 || offset < 0 {
				return usageError{fmt.Errorf("--limit must be 1-1000 and --offset at least 0")}
			}
			return c.withAdmin(func(ctx context.Context, a *admin) error {
				list, total, err := a.accounts.ListUsers(ctx, limit, offset)
				if err != nil {
					return err
				}
				views := make([]userView, len(list))
				for i, u := range list {
					views[i] = toUserView(u)
				}
				if c.asJSON {
					return c.printJSON(map[string]any{"users": views, "total": total})
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tEMAIL\tTIER\tSESSIONS\tCREATED")
				for _, u := range views {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", u.ID, u.Email, u.Tier, u.ActiveSessions, u.CreatedAt.Format(time.RFC3339))
				}
				_ = w.Flush()
				fmt.Fprintf(c.stdout, "%d of %d users\n", len(views), total)
				return nil
			})
		},
	}
	list.Flags().IntVar(&limit, "limit", 50, "users to list (1-1000)")
	list.Flags().IntVar(&offset, "offset", 0, "users to skip")

	show := &cobra.Command{
		Use:     "show <user>",
		Short:   "Show a user: profile, sessions, plan and credits",
		Example: "  perpetua users show alice@example.com",
		Args:    exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return c.withUser(args[0], func(ctx context.Context, a *admin, u *auth.UserInfo) error {
				plan, err := a.plans.Plan(ctx, u.ID)
				if err != nil {
					return err
				}
				return c.printUser(toUserView(*u), toPlanView(plan))
			})
		},
	}

	var until string
	setTier := &cobra.Command{
		Use:   "set-tier <user> pro|free",
		Short: "Put a user on Pro (until a date, or with no end) or back on free at once",
		Long: "Put a user on Pro — until the end of --until's day (UTC), or with no end — or back on free\n" +
			"at once. Pro is recorded as a granted subscription (subscription_check ends it at --until);\n" +
			"free ends any subscription now and writes its credits off. A paid subscription ended here\n" +
			"is not cancelled at the payment provider.",
		Example: "  perpetua users set-tier alice@example.com pro --until 2027-01-31\n  perpetua users set-tier alice@example.com free",
		Args:    exactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			tier := args[1]
			if tier != auth.TierPro && tier != auth.TierFree {
				return usageError{fmt.Errorf("the tier must be pro or free, got %q", tier)}
			}
			var end *time.Time
			if until != "" {
				t, err := parseUntil(until)
				if err != nil {
					return usageError{err}
				}
				end = &t
			}
			return c.withUser(args[0], func(ctx context.Context, a *admin, u *auth.UserInfo) error {
				before := u.Tier
				plan, err := a.plans.SetTier(ctx, u.ID, tier, end)
				if err != nil {
					return err
				}
				if c.asJSON {
					return c.printJSON(map[string]any{"user_id": u.ID, "email": u.Email, "tier_before": before, "plan": toPlanView(plan)})
				}
				line := fmt.Sprintf("%s: tier %s -> %s", u.Email, before, plan.Tier)
				if plan.Until != nil {
					line += " until " + plan.Until.UTC().Format(time.RFC3339)
				}
				fmt.Fprintln(c.stdout, line)
				return nil
			})
		},
	}
	setTier.Flags().StringVar(&until, "until", "", "last day of Pro, YYYY-MM-DD (UTC), or an RFC 3339 time")

	var reason string
	grant := &cobra.Command{
		Use:     "grant-credits <user> <credits>",
		Short:   fmt.Sprintf("Give a user AI credits of their own kind (granted, never expiring; 1-%d)", billing.MaxGrant),
		Example: "  perpetua users grant-credits alice@example.com 50 --reason \"outage on 2026-12-01\"",
		Args:    exactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return usageError{fmt.Errorf("credits must be a whole number, got %q", args[1])}
			}
			if strings.TrimSpace(reason) == "" {
				return usageError{fmt.Errorf("--reason is required: it is the credit history's description")}
			}
			return c.withUser(args[0], func(ctx context.Context, a *admin, u *auth.UserInfo) error {
				bal, err := a.plans.GrantCredits(ctx, u.ID, n, reason)
				if err != nil {
					return err
				}
				if c.asJSON {
					return c.printJSON(map[string]any{"user_id": u.ID, "email": u.Email, "granted": n, "reason": reason,
						"credits": toCreditView(bal)})
				}
				fmt.Fprintf(c.stdout, "%s: granted %d credits (%s); balance %d\n", u.Email, n, reason, bal.Total())
				return nil
			})
		},
	}
	grant.Flags().StringVar(&reason, "reason", "", "why (required; shown in the user's credit history)")

	revoke := &cobra.Command{
		Use:   "revoke-sessions <user>",
		Short: "Sign a user out everywhere: every session revoked at once",
		Long: "Sign a user out everywhere: every session is revoked at once, so its refresh tokens stop\n" +
			"working, and its access tokens too on every instance within auth.session_cache_ttl.",
		Example: "  perpetua users revoke-sessions 0193a5c4-5d7e-7b1e-9a51-3f0c2e8d4b6a",
		Args:    exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return c.withUser(args[0], func(ctx context.Context, a *admin, u *auth.UserInfo) error {
				n, err := a.accounts.RevokeSessions(ctx, u.ID)
				if err != nil {
					return err
				}
				if c.asJSON {
					return c.printJSON(map[string]any{"user_id": u.ID, "email": u.Email, "sessions_revoked": n})
				}
				fmt.Fprintf(c.stdout, "%s: %d session(s) revoked\n", u.Email, n)
				return nil
			})
		},
	}

	var yes bool
	erase := &cobra.Command{
		Use:   "erase <user>",
		Short: "Delete an account and erase every row of it now",
		Long: "Delete an account as DELETE /api/v1/users/me does (every session revoked, push subscriptions\n" +
			"removed, a Pro subscription ended and its card deleted at the payment provider), then erase\n" +
			"every row of the user at once instead of in the account_erase job. What is kept: the\n" +
			"deleted_accounts row (user id, SHA-256 of the email, when, credit and payment totals). A user\n" +
			"whose account was deleted already is named by id. Asks for --yes.",
		Example: "  perpetua users erase alice@example.com --yes",
		Args:    exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if !yes {
				return usageError{fmt.Errorf("this erases every row of %s for good: run it again with --yes", args[0])}
			}
			return c.withUser(args[0], func(ctx context.Context, a *admin, u *auth.UserInfo) error {
				e, err := a.erasure.EraseNow(ctx, u.ID)
				if err != nil {
					return err
				}
				var rows int64
				for _, n := range e.Erased {
					rows += n
				}
				if c.asJSON {
					return c.printJSON(map[string]any{"user_id": u.ID, "erased_at": e.ErasedAt, "rows_erased": rows,
						"erased": e.Erased, "kept": e.Kept})
				}
				fmt.Fprintf(c.stdout, "%s: account deleted, %d row(s) erased\n", u.ID, rows)
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				for _, name := range slices.Sorted(maps.Keys(e.Erased)) {
					if e.Erased[name] > 0 {
						fmt.Fprintf(w, "  %s\t%d\n", name, e.Erased[name])
					}
				}
				return w.Flush()
			})
		},
	}
	erase.Flags().BoolVar(&yes, "yes", false, "confirm the erasure")

	users.AddCommand(list, show, setTier, grant, revoke, erase)
	return users
}

// withAdmin composes the modules, runs f and closes the database.
func (c *cli) withAdmin(f func(context.Context, *admin) error) error {
	a, err := c.admin()
	if err != nil {
		return err
	}
	defer a.stop()
	return f(context.Background(), a)
}

// withUser is withAdmin for the user named by id or email.
func (c *cli) withUser(key string, f func(context.Context, *admin, *auth.UserInfo) error) error {
	return c.withAdmin(func(ctx context.Context, a *admin) error {
		u, err := a.accounts.FindUser(ctx, key)
		if err != nil {
			return err
		}
		return f(ctx, a, u)
	})
}

func (c *cli) printUser(u userView, p planView) error {
	if c.asJSON {
		return c.printJSON(map[string]any{"user": u, "plan": p})
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	seen := "never"
	if u.LastSeenAt != nil {
		seen = u.LastSeenAt.Format(time.RFC3339)
	}
	until := "-"
	if p.ProUntil != nil {
		until = p.ProUntil.Format(time.RFC3339)
	}
	status := p.SubscriptionStatus
	if status == "" {
		status = "none"
	}
	cr := p.Credits
	for _, row := range [][2]string{
		{"id", u.ID}, {"email", u.Email}, {"name", u.Name}, {"timezone", u.Timezone},
		{"created", u.CreatedAt.Format(time.RFC3339)}, {"sessions", fmt.Sprintf("%d active, last seen %s", u.ActiveSessions, seen)},
		{"tier", p.Tier}, {"subscription", status}, {"pro until", until},
		{"credits", fmt.Sprintf("%d (daily %d, subscription %d, purchased %d, kickstart %d, granted %d)",
			cr.Total, cr.Daily, cr.Subscription, cr.Purchased, cr.Kickstart, cr.Granted)},
	} {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	return w.Flush()
}

// parseUntil reads --until: a date is Pro through that whole day (UTC).
func parseUntil(s string) (time.Time, error) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("--until must be a date (2027-01-31) or an RFC 3339 time, got %q", s)
}
