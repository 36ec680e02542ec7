package tasks

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/google/uuid"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
)

// CalendarFeed is a user's calendar feed: calendar apps fetch the user's
// due tasks from a URL that holds a secret, since they cannot sign in. The
// secret is stored as its SHA-256; a new feed replaces the old one.
type CalendarFeed struct {
	UserID     uuid.UUID `gorm:"type:uuid;primaryKey"`
	SecretHash string    `gorm:"not null"`
	CreatedAt  time.Time
}

// TableName implements gorm's Tabler.
func (CalendarFeed) TableName() string { return "calendar_feeds" }

// feedSecretBytes is the secret's size: 32 random bytes, 43 characters of
// base64url in the URL.
const feedSecretBytes = 32

// feedMaxTasks bounds a feed: the open tasks with the nearest due dates.
const feedMaxTasks = 1000

// feedEventLength is the length of a task's event when it has no estimate.
const feedEventLength = 30 * time.Minute

var errFeedNotFound = apperr.NotFound(apperr.CodeNotFound, "calendar feed")

// hashFeedSecret is how a secret is stored and looked up.
func hashFeedSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// EnableFeed makes the caller's calendar feed, replacing any earlier one
// (whose URL stops working), and returns its URL.
func (s *Service) EnableFeed(ctx context.Context, p auth.Principal) (string, error) {
	b := make([]byte, feedSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	feed := CalendarFeed{UserID: p.UserID, SecretHash: hashFeedSecret(secret), CreatedAt: s.clock.Now()}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "user_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"secret_hash", "created_at"})}).Create(&feed).Error
	if err != nil {
		return "", fmt.Errorf("save calendar feed: %w", err)
	}
	return s.cfg.PublicURL + "/calendar/" + secret + ".ics", nil
}

// DisableFeed turns the caller's calendar feed off; false when there was
// none.
func (s *Service) DisableFeed(ctx context.Context, p auth.Principal) (bool, error) {
	res := s.db.WithContext(ctx).Where("user_id = ?", p.UserID).Delete(&CalendarFeed{})
	return res.RowsAffected > 0, res.Error
}

// FeedOwner finds the feed of a secret, and returns its hash (the feed's
// rate-limit key) and owner. Any secret that is not a live feed's —
// malformed, rotated, turned off — is the same 404; the lookup is by the
// secret's hash, compared again in constant time.
func (s *Service) FeedOwner(ctx context.Context, secret string) (string, uuid.UUID, error) {
	if b, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(b) != feedSecretBytes {
		return "", uuid.Nil, errFeedNotFound
	}
	hash := hashFeedSecret(secret)
	var feed CalendarFeed
	err := s.db.WithContext(ctx).Where("secret_hash = ?", hash).Take(&feed).Error
	if database.IsNotFound(err) || (err == nil && subtle.ConstantTimeCompare([]byte(feed.SecretHash), []byte(hash)) != 1) {
		return "", uuid.Nil, errFeedNotFound
	}
	if err != nil {
		return "", uuid.Nil, fmt.Errorf("find calendar feed: %w", err)
	}
	return hash, feed.UserID, nil
}

// Feed is the user's open, visible tasks with a due date, nearest first
// (at most feedMaxTasks), as an iCalendar document: one VEVENT per task,
// from its due time for its estimated duration (else 30 minutes), in UTC,
// with a VALARM per reminder still to come. Calendar apps that subscribe
// to a URL (Google Calendar, Outlook, Apple Calendar) show events; most
// ignore VTODOs in a subscription. Every property comes from the task, so
// the same tasks give the same bytes (the ETag).
func (s *Service) Feed(ctx context.Context, userID uuid.UUID) ([]byte, error) {
	db := s.db.WithContext(ctx)
	var tasks []Task
	err := db.Where("user_id = ? AND NOT completed AND NOT archived AND NOT hidden AND due_date IS NOT NULL", userID).
		Order("due_date, id").Limit(feedMaxTasks).Find(&tasks).Error
	if err != nil {
		return nil, fmt.Errorf("read due tasks: %w", err)
	}
	alarms := map[uuid.UUID][]Reminder{}
	if len(tasks) > 0 {
		ids := make([]uuid.UUID, len(tasks))
		for i, t := range tasks {
			ids[i] = t.ID
		}
		var reminders []Reminder
		if err := db.Where("user_id = ? AND task_id IN ? AND NOT fired", userID, ids).
			Order("scheduled_at, id").Find(&reminders).Error; err != nil {
			return nil, fmt.Errorf("read reminders: %w", err)
		}
		for _, r := range reminders {
			alarms[r.TaskID] = append(alarms[r.TaskID], r)
		}
	}
	cal := ics.NewCalendarFor("Perpetua Flow")
	cal.SetProductId("-//Perpetua Flow//Tasks//EN")
	cal.SetMethod(ics.MethodPublish)
	cal.SetName("Perpetua Flow")
	cal.SetXWRCalName("Perpetua Flow")
	cal.SetRefreshInterval("PT1H")
	for _, t := range tasks {
		ev := cal.AddEvent(t.ID.String() + "@perpetuaflow")
		ev.SetDtStampTime(t.UpdatedAt)
		ev.SetCreatedTime(t.CreatedAt)
		ev.SetModifiedAt(t.UpdatedAt)
		ev.SetSequence(t.Version)
		ev.SetSummary(t.Title)
		if t.Description != "" {
			ev.SetDescription(t.Description)
		}
		ev.SetStatus(ics.ObjectStatusConfirmed)
		ev.SetStartAt(*t.DueDate)
		length := feedEventLength
		if t.EstimatedDuration != nil {
			length = time.Duration(*t.EstimatedDuration) * time.Minute
		}
		ev.SetEndAt(t.DueDate.Add(length))
		ev.SetPriority(icalPriority(t.Priority))
		for _, r := range alarms[t.ID] {
			al := ev.AddAlarm()
			al.SetAction(ics.ActionDisplay)
			al.SetProperty(ics.ComponentPropertyDescription, t.Title)
			al.SetTrigger(r.ScheduledAt.UTC().Format("20060102T150405Z"), ics.WithValue(string(ics.ValueDataTypeDateTime)))
		}
	}
	return []byte(cal.Serialize()), nil
}

// icalPriority maps a task's priority to iCalendar's (1 highest, 9 lowest).
func icalPriority(p string) int {
	switch strings.ToLower(p) {
	case PriorityHigh:
		return 1
	case PriorityLow:
		return 9
	}
	return 5
}
