package billing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/gamification/perks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
)

// Ledger keeps the AI-credit ledger; the only writer of credit_ledger.
type Ledger struct {
	db    *database.DB
	clock clock.Clock
	cfg   Config
	users auth.Users
	perks perks.Bonus
}

type ledgerParams struct {
	fx.In

	DB    *database.DB
	Clock clock.Clock
	Cfg   Config
	Users auth.Users
	Perks perks.Bonus `optional:"true"`
}

func newLedger(p ledgerParams) *Ledger {
	return &Ledger{db: p.DB, clock: p.Clock, cfg: p.Cfg, users: p.Users, perks: p.Perks}
}

// nextUTCMidnight is when the day's credits of t expire.
func nextUTCMidnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// lockUser makes the ledger changes of one user take turns until tx ends.
func lockUser(tx *gorm.DB, userID uuid.UUID) error {
	return database.LockKey(tx, ledgerLock(userID))
}

// ledgerLock is the key of a user's ledger lock.
func ledgerLock(userID uuid.UUID) string { return "credits:" + userID.String() }

// creditSums are the lists of row_counts that keep, per user, the sum of
// the ledger's amounts of each kind (a trigger on credit_ledger adds each
// row's amount in the writer's transaction): the balance routes read it
// without a lock, whatever the length of the user's history.
var creditSums = []string{"credits:" + KindDaily, "credits:" + KindSubscription, "credits:" + KindPurchased, "credits:" + KindKickstart,
	"credits:" + KindGranted}

func (b *Balance) add(kind string, n int) {
	switch kind {
	case KindDaily:
		b.Daily += n
	case KindSubscription:
		b.Subscription += n
	case KindPurchased:
		b.Purchased += n
	case KindKickstart:
		b.Kickstart += n
	case KindGranted:
		b.Granted += n
	}
}

// book holds a user's locked ledger while a change is made: the lots with
// credits left and the balance as it is after each row written.
//
// Every credit is in a lot (a grant or a release row) until it is taken:
// the balance of a kind is what its lots have left, which equals the sum of
// its rows' amounts (each row that takes credits takes them from lots).
// One read after the lock finds all a change needs: the lots, today's
// daily grant and the rows of the hold it concerns.
type book struct {
	l      *Ledger
	tx     *gorm.DB
	userID uuid.UUID
	now    time.Time
	today  string // the once key of today's daily grant
	bal    Balance
	lots   []*Entry // with credits left, oldest first
	daily  bool     // today's daily grant is written
	hold   []Entry  // the rows of the hold asked about, in the order written
	// taken are the lots whose Remaining changed since the last row was
	// written: the next row's write (every take is followed by one)
	// updates them, on PostgreSQL in its own statement.
	taken    []*Entry
	postgres bool
}

// open locks the user's ledger, expires what is due and grants the day's
// credits (once a UTC day). holdID names the hold the change concerns
// (uuid.Nil: none).
func (l *Ledger) open(ctx context.Context, tx *gorm.DB, userID, holdID uuid.UUID) (*book, error) {
	b, err := l.openWithoutDaily(tx, userID, holdID)
	if err != nil {
		return nil, err
	}
	return b, b.grantDaily(ctx)
}

// openWithoutDaily is open without the day's grant (sign-up: the welcome
// credits come first).
func (l *Ledger) openWithoutDaily(tx *gorm.DB, userID, holdID uuid.UUID) (*book, error) {
	now := l.clock.Now()
	b := &book{l: l, tx: tx, userID: userID, now: now, today: dailyKey(now), postgres: tx.Dialector.Name() == "postgres"}
	// Three indexes (the live lots', the once keys', the holds') answer
	// the three parts; a row in two of them comes once. On PostgreSQL the
	// function credit_book takes the user's ledger lock and then reads
	// them, in one round trip (see its migration); SQLite needs no lock.
	var rows []Entry
	var err error
	if b.postgres {
		err = tx.Raw(`SELECT * FROM credit_book(?, ?, ?, ?)`, userID, ledgerLock(userID), b.today, holdID).Scan(&rows).Error
	} else {
		err = tx.Raw(`SELECT * FROM credit_ledger WHERE user_id = ? AND remaining > 0
			UNION SELECT * FROM credit_ledger WHERE user_id = ? AND once_key = ?
			UNION SELECT * FROM credit_ledger WHERE user_id = ? AND hold_id = ?
			ORDER BY created_at, id`, userID, userID, b.today, userID, holdID).Scan(&rows).Error
	}
	if err != nil {
		return nil, fmt.Errorf("read credit lots: %w", err)
	}
	for i := range rows {
		r := &rows[i]
		if r.Remaining > 0 {
			b.lots = append(b.lots, r)
			b.bal.add(r.Kind, r.Remaining)
		}
		if r.OnceKey != nil && *r.OnceKey == b.today {
			b.daily = true
		}
		if holdID != uuid.Nil && r.HoldID != nil && *r.HoldID == holdID {
			b.hold = append(b.hold, *r)
		}
	}
	return b, b.expireDue()
}

// write appends one row and moves the balance; a row with credits left is
// a lot to take from.
func (b *book) write(e *Entry) error {
	b.bal.add(e.Kind, e.Amount)
	e.ID, e.UserID, e.BalanceAfter, e.CreatedAt = id.New(), b.userID, b.bal.Total(), b.now
	if err := b.flush(e); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	b.keep(e)
	return nil
}

// entryColumns are credit_ledger's columns, in the order flush gives
// their values.
const entryColumns = "id, user_id, kind, entry, amount, remaining, balance_after, description, once_key, hold_id, expires_at, created_at"

// flush writes the lots taken from since the last row, and row e: on
// PostgreSQL in one statement (the updates in a WITH before the insert),
// on SQLite (which has no UPDATE in a WITH, nor round trips) one after the
// other.
func (b *book) flush(e *Entry) error {
	taken := b.taken
	b.taken = nil
	if !b.postgres {
		for _, g := range taken {
			if err := b.tx.Model(&Entry{}).Where("id = ?", g.ID).Update("remaining", g.Remaining).Error; err != nil {
				return err
			}
		}
		return b.tx.Create(e).Error
	}
	var q strings.Builder
	args := make([]any, 0, 2*len(taken)+12)
	for i, g := range taken {
		if i == 0 {
			q.WriteString("WITH ")
		} else {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "take%d AS (UPDATE credit_ledger SET remaining = ? WHERE id = ?)", i)
		args = append(args, g.Remaining, g.ID)
	}
	q.WriteString(" INSERT INTO credit_ledger (" + entryColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	args = append(args, e.ID, e.UserID, e.Kind, e.Entry, e.Amount, e.Remaining, e.BalanceAfter, e.Description,
		e.OnceKey, e.HoldID, e.ExpiresAt, e.CreatedAt)
	return b.tx.Exec(q.String(), args...).Error
}

// keep adds a row just written to the lots when it has credits left.
func (b *book) keep(e *Entry) {
	if e.OnceKey != nil && *e.OnceKey == b.today {
		b.daily = true
	}
	if e.Remaining <= 0 {
		return
	}
	b.lots = append(b.lots, e)
	slices.SortStableFunc(b.lots, func(x, y *Entry) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(x.ID[:], y.ID[:])
	})
}

// grant adds credits of kind, once per onceKey when one is given; it
// reports whether it granted.
func (b *book) grant(kind, entry string, amount int, desc string, onceKey string, expires *time.Time) (bool, error) {
	if amount <= 0 {
		return false, nil
	}
	if amount > maxCredits {
		return false, fmt.Errorf("grant %d credits: more than the ledger's bound of %d", amount, maxCredits)
	}
	e := &Entry{Kind: kind, Entry: entry, Amount: amount, Remaining: amount, Description: desc, ExpiresAt: expires}
	if onceKey != "" {
		e.OnceKey = &onceKey
		granted := b.daily // today's grant was read with the lots
		if onceKey != b.today {
			var n int64
			if err := b.tx.Model(&Entry{}).Where("user_id = ? AND once_key = ?", b.userID, onceKey).Count(&n).Error; err != nil {
				return false, err
			}
			granted = n > 0
		}
		if granted {
			return false, nil
		}
	}
	b.bal.add(kind, amount)
	e.ID, e.UserID, e.BalanceAfter, e.CreatedAt = id.New(), b.userID, b.bal.Total(), b.now
	// The unique (user, once key) decides between two requests that both
	// found no grant: the second inserts nothing.
	res := b.tx.Clauses(clause.OnConflict{DoNothing: true}).Create(e)
	if res.Error != nil {
		return false, fmt.Errorf("grant credits: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		b.bal.add(kind, -amount)
		return false, nil
	}
	b.keep(e)
	return true, nil
}

// grantDaily grants today's daily credits (the tier's plus perks), once a
// UTC day; they expire at the next UTC midnight.
func (b *book) grantDaily(ctx context.Context) error {
	if b.daily { // every request but the day's first
		return nil
	}
	p, err := b.l.users.Principal(ctx, b.tx, b.userID)
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	amount, err := perks.Limit(ctx, b.tx, b.l.perks, b.userID, perks.DailyCredits, b.l.cfg.Tiers.For(p.Tier).DailyAICredits)
	if err != nil {
		return err
	}
	until := nextUTCMidnight(b.now)
	_, err = b.grant(KindDaily, EntryGrant, amount, "daily credits", b.today, &until)
	return err
}

// lotsOf are the user's lots of kind with credits left, oldest first.
func (b *book) lotsOf(kind string) []*Entry {
	var out []*Entry
	for _, g := range b.lots {
		if g.Kind == kind && g.Remaining > 0 {
			out = append(out, g)
		}
	}
	return out
}

// take removes n credits from lot g (its Remaining); the row written next
// records the change (flush).
func (b *book) take(g *Entry, n int) {
	g.Remaining -= n
	if !slices.Contains(b.taken, g) {
		b.taken = append(b.taken, g)
	}
}

// expire writes off what is left of the lots of kind that pass filter.
func (b *book) expire(kind, desc string, filter func(*Entry) bool) (int, error) {
	total := 0
	for _, g := range b.lotsOf(kind) {
		if !filter(g) {
			continue
		}
		n := g.Remaining
		b.take(g, n)
		if err := b.write(&Entry{Kind: kind, Entry: EntryExpire, Amount: -n, Description: desc}); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// expireDue writes off the lots whose time has passed (usually none).
func (b *book) expireDue() error {
	for _, kind := range spendOrder { // the order the rows were always written in
		if _, err := b.expire(kind, "expired", func(g *Entry) bool {
			return g.ExpiresAt != nil && !g.ExpiresAt.After(b.now)
		}); err != nil {
			return err
		}
	}
	return nil
}

// spend takes amount credits in spending order (see draw).
func (b *book) spend(amount int, reason string) error {
	return b.draw(amount, EntrySpend, reason, nil, nil)
}

// draw takes amount credits in spending order, oldest lot first within a
// kind, and writes one row of type entry per kind it took from (a hold's
// rows carry its id and when it lapses). It fails with 402, changing
// nothing, when the balance is short.
func (b *book) draw(amount int, entry, reason string, holdID *uuid.UUID, lapses *time.Time) error {
	if amount <= 0 {
		return nil
	}
	if b.bal.Total() < amount {
		return apperr.New(apperr.KindPaymentRequired, CodeInsufficientCredits,
			"this needs %d credits and %d are left", amount, b.bal.Total())
	}
	takes := lots(b.lots).plan(amount)
	taken := 0
	for i, t := range takes {
		b.take(t.lot, t.n)
		taken += t.n
		if i+1 < len(takes) && takes[i+1].lot.Kind == t.lot.Kind {
			continue
		}
		// The last take of its kind: one row for what the kind gave.
		e := &Entry{Kind: t.lot.Kind, Entry: entry, Amount: -taken, Description: reason, HoldID: holdID, ExpiresAt: lapses}
		if err := b.write(e); err != nil {
			return err
		}
		taken = 0
	}
	return nil
}

// lots are a user's lots with credits left, oldest first.
type lots []*Entry

// lotTake is n credits out of one lot.
type lotTake struct {
	lot *Entry
	n   int
}

// plan says which lots amount is taken from: kinds in spending order
// (spendOrder), oldest lot first within a kind,
// the takes of one kind together. The lots must hold amount (the caller
// checks the balance first); the plan changes nothing.
func (ls lots) plan(amount int) []lotTake {
	var out []lotTake
	left := amount
	for _, kind := range spendOrder {
		for _, g := range ls {
			if left == 0 {
				return out
			}
			if g.Kind != kind || g.Remaining <= 0 {
				continue
			}
			n := min(g.Remaining, left)
			out = append(out, lotTake{lot: g, n: n})
			left -= n
		}
	}
	return out
}

// openHold returns the rows of the hold read with the lots that are still
// open (none when it was settled, released or never made), in the order
// written, and the credits they hold.
func (b *book) openHold() ([]Entry, int) {
	var rows []Entry
	held := 0
	for _, r := range b.hold {
		if r.Entry == EntryHold {
			rows = append(rows, r)
			held -= r.Amount
		}
	}
	return rows, held
}

var errHoldChanged = errors.New("a credit hold changed while its user's ledger was locked")

// closeHold turns the open rows of a hold into entry. The user's ledger is
// locked, so every row found open is still open: a count that differs is
// a bug, not a race.
func (b *book) closeHold(holdID uuid.UUID, rows []Entry, entry string) error {
	res := b.tx.Model(&Entry{}).Where("user_id = ? AND hold_id = ? AND entry = ?", b.userID, holdID, EntryHold).
		Updates(map[string]any{"entry": entry, "expires_at": nil})
	if res.Error != nil {
		return fmt.Errorf("close credit hold: %w", res.Error)
	}
	if res.RowsAffected != int64(len(rows)) {
		return errHoldChanged
	}
	return nil
}

// giveBack returns n of the credits a hold's rows took, the last taken
// first, as release rows: lots of their kind, spendable again, which
// expire when the credits they replace would have (a day's credits at the
// end of the day they were held in).
func (b *book) giveBack(rows []Entry, n int, reason string) error {
	for i := len(rows) - 1; i >= 0 && n > 0; i-- {
		r := rows[i]
		m := min(-r.Amount, n)
		var expires *time.Time
		if r.Kind == KindDaily {
			t := nextUTCMidnight(r.CreatedAt)
			expires = &t
		}
		e := &Entry{Kind: r.Kind, Entry: EntryRelease, Amount: m, Remaining: m, Description: "not charged: " + reason,
			HoldID: r.HoldID, ExpiresAt: expires}
		if err := b.write(e); err != nil {
			return err
		}
		n -= m
	}
	// Credits given back after their day are written off at once.
	return b.expireDue()
}

// Spend takes amount credits at once (no hold: nothing outside the
// transaction is waited for); 402 INSUFFICIENT_CREDITS, changing nothing, when the
// balance is short.
func (l *Ledger) Spend(ctx context.Context, tx *gorm.DB, userID uuid.UUID, amount int, reason string) (Balance, error) {
	b, err := l.open(ctx, tx.WithContext(ctx), userID, uuid.Nil)
	if err != nil {
		return Balance{}, err
	}
	if err := b.spend(amount, reason); err != nil {
		return Balance{}, err
	}
	return b.bal, nil
}

// Hold implements Credits.
func (l *Ledger) Hold(ctx context.Context, tx *gorm.DB, userID, holdID uuid.UUID, amount int, reason string, until time.Time) (Balance, error) {
	b, err := l.open(ctx, tx.WithContext(ctx), userID, holdID)
	if err != nil {
		return Balance{}, err
	}
	if len(b.hold) > 0 {
		return b.bal, nil // once per id: a job that runs again holds nothing more
	}
	if amount > maxCredits {
		return Balance{}, fmt.Errorf("hold %d credits: more than the ledger's bound of %d", amount, maxCredits)
	}
	if err := b.draw(amount, EntryHold, reason, &holdID, &until); err != nil {
		return Balance{}, err
	}
	return b.bal, nil
}

// Settle implements Credits.
func (l *Ledger) Settle(ctx context.Context, tx *gorm.DB, userID, holdID uuid.UUID, amount int, reason string) (Balance, error) {
	b, err := l.open(ctx, tx.WithContext(ctx), userID, holdID)
	if err != nil {
		return Balance{}, err
	}
	rows, held := b.openHold()
	if len(rows) > 0 {
		if err := b.closeHold(holdID, rows, EntrySpend); err != nil {
			return Balance{}, err
		}
	}
	switch {
	case amount > maxCredits:
		return Balance{}, fmt.Errorf("spend %d credits: more than the ledger's bound of %d", amount, maxCredits)
	case amount > held:
		err = b.spend(amount-held, reason)
	case amount < held:
		err = b.giveBack(rows, held-amount, reason)
	}
	return b.bal, err
}

// Release implements Credits.
func (l *Ledger) Release(ctx context.Context, tx *gorm.DB, userID, holdID uuid.UUID) (bool, error) {
	b, err := l.open(ctx, tx.WithContext(ctx), userID, holdID)
	if err != nil {
		return false, err
	}
	rows, held := b.openHold()
	if len(rows) == 0 {
		return false, nil
	}
	if err := b.closeHold(holdID, rows, EntryReleased); err != nil {
		return false, err
	}
	return true, b.giveBack(rows, held, rows[0].Description)
}

// ReleaseLapsed gives back the holds still open after their time: their
// request's process died (or hung) before it settled or released them. It
// returns how many it released.
func (l *Ledger) ReleaseLapsed(ctx context.Context) (int, error) {
	var lapsed []struct {
		UserID uuid.UUID
		HoldID uuid.UUID
	}
	err := l.db.WithContext(ctx).Model(&Entry{}).Distinct("user_id", "hold_id").
		Where("entry = ? AND expires_at <= ?", EntryHold, l.clock.Now()).Limit(1000).Scan(&lapsed).Error
	if err != nil {
		return 0, fmt.Errorf("find lapsed credit holds: %w", err)
	}
	released := 0
	for _, h := range lapsed {
		var ok bool
		if err := l.db.Tx(ctx, func(tx *gorm.DB) (err error) {
			ok, err = l.Release(ctx, tx, h.UserID, h.HoldID)
			return err
		}); err != nil {
			return released, err
		}
		if ok {
			released++
		}
	}
	return released, nil
}

// Balance implements Credits.
func (l *Ledger) Balance(ctx context.Context, tx *gorm.DB, userID uuid.UUID) (Balance, error) {
	b, err := l.open(ctx, tx.WithContext(ctx), userID, uuid.Nil)
	if err != nil {
		return Balance{}, err
	}
	return b.bal, nil
}

// CurrentBalance is the user's balance for the balance and history routes.
// Most reads are one statement without a lock: the sums, and whether
// today's credits are granted and nothing is due to expire. Otherwise (the
// day's first read, or credits due to expire) it runs Balance in a
// transaction of its own, which locks the user's ledger, writes the expiry
// and the day's grant (once, by its key), and sums again.
func (l *Ledger) CurrentBalance(ctx context.Context, userID uuid.UUID) (Balance, error) {
	if b, ok, err := l.settledBalance(ctx, userID); err != nil || ok {
		return b, err
	}
	var out Balance
	err := l.db.Tx(ctx, func(tx *gorm.DB) (err error) {
		out, err = l.Balance(ctx, tx, userID)
		return err
	})
	return out, err
}

// settledBalance reads the user's balance in one statement and reports
// whether it is the balance: today's daily grant is there and no lot is
// due to expire (both found in an index, as the sums are kept).
func (l *Ledger) settledBalance(ctx context.Context, userID uuid.UUID) (Balance, bool, error) {
	now := l.clock.Now()
	var rows []struct {
		List string
		N    int
	}
	err := l.db.WithContext(ctx).Raw(`SELECT list, n FROM row_counts WHERE user_id = ? AND list IN ?
		UNION ALL SELECT 'today', 1 WHERE EXISTS (SELECT 1 FROM credit_ledger WHERE user_id = ? AND once_key = ?)
		UNION ALL SELECT 'due', 1 WHERE EXISTS (SELECT 1 FROM credit_ledger WHERE user_id = ? AND remaining > 0 AND expires_at <= ?)`,
		userID, creditSums, userID, dailyKey(now), userID, now).Scan(&rows).Error
	if err != nil {
		return Balance{}, false, fmt.Errorf("sum credits: %w", err)
	}
	var b Balance
	today := false
	for _, r := range rows {
		switch r.List {
		case "due":
			return Balance{}, false, nil
		case "today":
			today = true
		default:
			b.add(strings.TrimPrefix(r.List, "credits:"), r.N)
		}
	}
	return b, today, nil
}

// dailyKey is the once key of the daily grant of t's UTC day.
func dailyKey(t time.Time) string { return "daily:" + t.UTC().Format(time.DateOnly) }

// History is one page of the user's ledger, newest first, today's daily grant
// included (granted first if this is the day's first read).
func (l *Ledger) History(ctx context.Context, userID uuid.UUID, w database.Window) (database.Paged[Entry], error) {
	if _, err := l.CurrentBalance(ctx, userID); err != nil { // today's grant shows in the history
		return database.Paged[Entry]{}, err
	}
	q := l.db.WithContext(ctx).Model(&Entry{}).Where("user_id = ?", userID)
	return database.Page(q, historyOrder, w,
		&database.Kept{UserID: userID, Plus: []string{"credit_history"}})
}

// NextDailyReset is when today's daily credits expire and the next day's
// are granted: the next UTC midnight.
func (l *Ledger) NextDailyReset() time.Time { return nextUTCMidnight(l.clock.Now()) }

// historyOrder is the history's order, newest first.
var historyOrder = database.Keyset[Entry]{List: "credits", Column: "created_at",
	Key: func(e *Entry) (time.Time, uuid.UUID) { return e.CreatedAt, e.ID }}

// GrantKickstart grants the sign-up credits (once).
func (l *Ledger) GrantKickstart(ctx context.Context, tx *gorm.DB, userID uuid.UUID) error {
	b, err := l.openWithoutDaily(tx, userID, uuid.Nil)
	if err != nil {
		return err
	}
	_, err = b.grant(KindKickstart, EntryGrant, l.cfg.KickstartCredits, "welcome credits", "kickstart", nil)
	return err
}

// GrantPurchase grants purchased credits (never expiring), once per key (a
// payment).
func (l *Ledger) GrantPurchase(ctx context.Context, tx *gorm.DB, userID uuid.UUID, credits int, key string) (bool, Balance, error) {
	b, err := l.open(ctx, tx, userID, uuid.Nil)
	if err != nil {
		return false, Balance{}, err
	}
	granted, err := b.grant(KindPurchased, EntryGrant, credits, "purchased credits", "purchase:"+key, nil)
	return granted, b.bal, err
}

// MaxGrant bounds one operator's grant of credits.
const MaxGrant = 10_000

// GrantCredits gives credits of their own kind (granted: never expiring),
// 1 to MaxGrant at a time, with the operator's reason as the history's
// description.
func (l *Ledger) GrantCredits(ctx context.Context, tx *gorm.DB, userID uuid.UUID, credits int, reason string) (Balance, error) {
	if credits < 1 || credits > MaxGrant {
		return Balance{}, apperr.Validation("credits", "must be 1-%d", MaxGrant)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 200 {
		return Balance{}, apperr.Validation("reason", "must be 1-200 characters")
	}
	b, err := l.open(ctx, tx, userID, uuid.Nil)
	if err != nil {
		return Balance{}, err
	}
	if _, err := b.grant(KindGranted, EntryGrant, credits, "granted: "+reason, "", nil); err != nil {
		return Balance{}, err
	}
	return b.bal, nil
}

// PurchasedSince is the credits the user bought since t.
func (l *Ledger) PurchasedSince(tx *gorm.DB, userID uuid.UUID, t time.Time) (int, error) {
	var n int
	err := tx.Model(&Entry{}).Select("COALESCE(SUM(amount), 0)").
		Where("user_id = ? AND kind = ? AND entry = ? AND created_at >= ?", userID, KindPurchased, EntryGrant, t).Scan(&n).Error
	return n, err
}

// RenewSubscription starts a paid period: unused subscription credits are
// written off, at most the carry-over comes back, and the period's credits
// are granted (once per period key). Subscription credits have no expiry
// date of their own: the next renewal, or the end of the subscription,
// writes them off.
func (l *Ledger) RenewSubscription(ctx context.Context, tx *gorm.DB, userID uuid.UUID, monthly int, periodEnd time.Time, key string) error {
	b, err := l.open(ctx, tx, userID, uuid.Nil)
	if err != nil {
		return err
	}
	var already int64
	if err := tx.Model(&Entry{}).Where("user_id = ? AND once_key = ?", userID, "subscription:"+key).Count(&already).Error; err != nil {
		return err
	}
	if already > 0 {
		return nil
	}
	unused, err := b.expire(KindSubscription, "renewal", func(*Entry) bool { return true })
	if err != nil {
		return err
	}
	if carry := min(unused, l.cfg.SubscriptionCarryOver); carry > 0 {
		if _, err := b.grant(KindSubscription, EntryCarryOver, carry, "carried over at renewal", "", nil); err != nil {
			return err
		}
	}
	_, err = b.grant(KindSubscription, EntryGrant, monthly, "subscription credits until "+periodEnd.UTC().Format(time.DateOnly),
		"subscription:"+key, nil)
	return err
}

// EndSubscriptionCredits writes off the subscription credits (the free tier
// has none).
func (l *Ledger) EndSubscriptionCredits(ctx context.Context, tx *gorm.DB, userID uuid.UUID) error {
	b, err := l.open(ctx, tx, userID, uuid.Nil)
	if err != nil {
		return err
	}
	_, err = b.expire(KindSubscription, "subscription ended", func(*Entry) bool { return true })
	return err
}

// ExpireDue writes off every user's credits whose time has passed, and
// grants the new day's credits to those who had yesterday's (the users
// who come back every day get them without waiting for a request). It
// returns how many users it touched.
func (l *Ledger) ExpireDue(ctx context.Context) (int, error) {
	now := l.clock.Now()
	yesterday := dailyKey(now.AddDate(0, 0, -1))
	var users []uuid.UUID
	err := l.db.WithContext(ctx).Model(&Entry{}).Distinct("user_id").
		Where("(remaining > 0 AND expires_at <= ?) OR once_key = ?", now, yesterday).Pluck("user_id", &users).Error
	if err != nil {
		return 0, fmt.Errorf("find due credits: %w", err)
	}
	for _, u := range users {
		if err := l.db.Tx(ctx, func(tx *gorm.DB) error {
			_, err := l.open(ctx, tx, u, uuid.Nil)
			return err
		}); err != nil {
			return 0, err
		}
	}
	return len(users), nil
}
