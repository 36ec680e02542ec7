package account

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/userdata"
)

var errExportNotFound = apperr.NotFound(apperr.CodeNotFound, "export")

// ExportView is an export as its owner sees it.
type ExportView struct {
	Export
	// DownloadURL is set while the archive can be downloaded.
	DownloadURL string
}

// RequestExport asks for an export of everything we hold about the caller:
// the account_export job writes the archive. One export is under way per
// user at a time (409 EXPORT_IN_PROGRESS).
func (s *Service) RequestExport(ctx context.Context, p auth.Principal) (*ExportView, error) {
	now := s.clock.Now()
	e := Export{ID: id.New(), UserID: p.UserID, State: statePending, CreatedAt: now, UpdatedAt: now}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&e).Error; err != nil {
			return err
		}
		return s.bus.Publish(ctx, tx, ExportRequested{UserID: p.UserID, ExportID: e.ID})
	})
	if database.IsUniqueViolation(err) {
		return nil, apperr.New(apperr.KindConflict, CodeExportInProgress,
			"an export of this account is under way already; ask for its state (GET /users/me/export/{id})")
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("export requested", zap.String("user_id", p.UserID.String()), zap.String("export_id", e.ID.String()))
	return &ExportView{Export: e}, nil
}

// GetExport returns one of the caller's exports. While its archive is kept,
// a ready export has a download URL valid for download_ttl: asked for after
// that, a new URL is made (the old one stops working).
func (s *Service) GetExport(ctx context.Context, p auth.Principal, exportID uuid.UUID) (*ExportView, error) {
	var e Export
	err := s.db.WithContext(ctx).Where("id = ? AND user_id = ?", exportID, p.UserID).Take(&e).Error
	if database.IsNotFound(err) {
		return nil, errExportNotFound
	}
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	if e.State == stateReady && e.ExpiresAt != nil && now.Before(*e.ExpiresAt) &&
		(e.DownloadUntil == nil || !now.Before(*e.DownloadUntil)) {
		until := minTime(now.Add(s.cfg.DownloadTTL), *e.ExpiresAt)
		token := newToken()
		res := s.db.WithContext(ctx).Model(&Export{}).Where("id = ? AND state = ?", e.ID, stateReady).
			Updates(map[string]any{"download_token": token, "download_until": until, "updated_at": now})
		if res.Error != nil {
			return nil, res.Error
		}
		e.DownloadToken, e.DownloadUntil = token, &until
	}
	return s.view(e), nil
}

func (s *Service) view(e Export) *ExportView {
	v := &ExportView{Export: e}
	if e.State == stateReady && e.DownloadToken != "" && e.DownloadUntil != nil && s.clock.Now().Before(*e.DownloadUntil) {
		v.DownloadURL = fmt.Sprintf("%s/api/v1/exports/%s/download?token=%s", s.publicURL, e.ID, e.DownloadToken)
	}
	return v
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Archive is an export's archive, opened for download.
type Archive struct {
	File     *os.File
	Size     int64
	Filename string
}

// OpenArchive opens the archive of an export for whoever holds its
// download link's token (compared in constant time). An unknown export or a
// wrong token is a 404; a link past its time, or an archive deleted, a 410.
func (s *Service) OpenArchive(ctx context.Context, exportID uuid.UUID, token string) (*Archive, error) {
	var e Export
	err := s.db.WithContext(ctx).Where("id = ?", exportID).Take(&e).Error
	if err != nil && !database.IsNotFound(err) {
		return nil, err
	}
	want := sha256.Sum256([]byte(e.DownloadToken))
	got := sha256.Sum256([]byte(token))
	if database.IsNotFound(err) || e.DownloadToken == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, apperr.NotFound(apperr.CodeNotFound, "export (or the link's token is wrong)")
	}
	now := s.clock.Now()
	if e.State != stateReady || e.DownloadUntil == nil || !now.Before(*e.DownloadUntil) {
		return nil, apperr.New(apperr.KindGone, CodeExportExpired,
			"this download link has expired; ask for the export again (GET /users/me/export/{id}) for a new one")
	}
	f, err := os.Open(s.cfg.archivePath(e.ID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, apperr.New(apperr.KindGone, CodeExportExpired, "this export's archive was deleted; ask for a new export")
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	name := fmt.Sprintf("perpetua-export-%s.zip", e.CreatedAt.UTC().Format("2006-01-02"))
	return &Archive{File: f, Size: st.Size(), Filename: name}, nil
}

func (c Config) archivePath(exportID uuid.UUID) string {
	return filepath.Join(c.ExportDir, exportID.String()+".zip")
}

// runExport writes an export's archive and records it ready (the
// account_export job). An export no longer pending is left as it is: a
// retry after the archive was recorded does nothing.
func (s *Service) runExport(ctx context.Context, exportID uuid.UUID) error {
	var e Export
	err := s.db.WithContext(ctx).Where("id = ?", exportID).Take(&e).Error
	if database.IsNotFound(err) || (err == nil && e.State != statePending) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.cfg.ExportDir, 0o700); err != nil {
		return fmt.Errorf("export dir: %w", err)
	}
	final := s.cfg.archivePath(e.ID)
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	defer os.Remove(part) // after the rename, nothing to remove
	now := s.clock.Now()
	rows, err := s.WriteArchive(ctx, f, e.UserID, now)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	size, err := fileSize(part)
	if err != nil {
		return err
	}
	if err := os.Rename(part, final); err != nil {
		return fmt.Errorf("save archive: %w", err)
	}
	done := s.clock.Now()
	until, expires := done.Add(s.cfg.DownloadTTL), done.Add(s.cfg.ExportTTL)
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Export{}).Where("id = ? AND state = ?", e.ID, statePending).Updates(map[string]any{
			"state": stateReady, "rows": rows, "bytes": size, "download_token": newToken(), "download_until": until,
			"ready_at": done, "expires_at": expires, "updated_at": done})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		return s.bus.Publish(ctx, tx, ExportReady{UserID: e.UserID, ExportID: e.ID, ExpiresAt: expires})
	})
	if err != nil {
		return err
	}
	s.log.Info("export written", zap.String("user_id", e.UserID.String()), zap.String("export_id", e.ID.String()),
		zap.Int64("rows", rows), zap.Int64("bytes", size), zap.Duration("took", done.Sub(now)))
	return nil
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// failExport marks an export failed after its last attempt, so the user
// may ask again.
func (s *Service) failExport(ctx context.Context, exportID uuid.UUID, cause error) error {
	now := s.clock.Now()
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		var e Export
		if err := database.ForUpdate(tx).Where("id = ? AND state = ?", exportID, statePending).Take(&e).Error; err != nil {
			if database.IsNotFound(err) {
				return nil
			}
			return err
		}
		msg := cause.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		if err := tx.Model(&Export{}).Where("id = ?", exportID).
			Updates(map[string]any{"state": stateFailed, "error": msg, "updated_at": now}).Error; err != nil {
			return err
		}
		return s.bus.Publish(ctx, tx, ExportFailed{UserID: e.UserID, ExportID: e.ID})
	})
}

// exportFormat names the layout of export.json.
const exportFormat = "perpetua-flow-export/1"

// WriteArchive writes the zip archive of everything the exporters hold
// about the user to w: export.json (one list of rows per exporter, read in
// one snapshot of the database) and README.txt. Rows are streamed from the
// database to the compressor one at a time: memory does not grow with the
// user's rows. It returns how many rows it wrote.
func (s *Service) WriteArchive(ctx context.Context, w io.Writer, userID uuid.UUID, at time.Time) (int64, error) {
	zw := zip.NewWriter(w)
	jw, err := zw.CreateHeader(&zip.FileHeader{Name: "export.json", Method: zip.Deflate, Modified: at})
	if err != nil {
		return 0, err
	}
	counts := map[string]int64{}
	var total int64
	err = s.snapshot(ctx, func(q userdata.Query) error {
		var err error
		total, err = s.writeJSON(ctx, jw, q, userID, at, counts)
		return err
	})
	if err != nil {
		return 0, err
	}
	rw, err := zw.CreateHeader(&zip.FileHeader{Name: "README.txt", Method: zip.Deflate, Modified: at})
	if err != nil {
		return 0, err
	}
	if _, err := io.WriteString(rw, s.readme(userID, at, counts)); err != nil {
		return 0, err
	}
	return total, zw.Close()
}

// snapshot runs fn in a read-only transaction: every table is read as of
// one moment (REPEATABLE READ on PostgreSQL; a read transaction of the WAL
// on SQLite), on the read pool.
func (s *Service) snapshot(ctx context.Context, fn func(userdata.Query) error) error {
	var opts *sql.TxOptions
	if s.db.Dialect == database.Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.db.Read.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin export snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(func(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
		return tx.QueryContext(ctx, s.db.Rebind(query), args...)
	})
}

func (s *Service) writeJSON(ctx context.Context, w io.Writer, q userdata.Query, userID uuid.UUID, at time.Time,
	counts map[string]int64) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	head, err := json.Marshal(map[string]any{"format": exportFormat, "exported_at": at.UTC(), "user_id": userID})
	if err != nil {
		return 0, err
	}
	// {"format":…,"user_id":…, "tables": {"name": [row, …], …}}
	bw.Write(head[:len(head)-1])
	bw.WriteString(`,"tables":{`)
	var total int64
	first := true
	for _, e := range s.exporters {
		if e.Rows == nil {
			continue
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(e.Name)
		bw.Write(name)
		bw.WriteString(":[")
		n := int64(0)
		enc := json.NewEncoder(bw)
		err := e.Rows(ctx, q, userID, func(r userdata.Row) error {
			if n > 0 {
				bw.WriteByte(',')
			}
			n++
			bw.WriteString("\n")
			return enc.Encode(r)
		})
		if err != nil {
			return 0, err
		}
		bw.WriteString("]")
		counts[e.Name] = n
		total += n
	}
	bw.WriteString("}}\n")
	return total, bw.Flush()
}

// readme describes the archive's files and every list of export.json.
func (s *Service) readme(userID uuid.UUID, at time.Time, counts map[string]int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `Perpetua Flow: your data

This archive holds every row Perpetua Flow keeps about account %s,
as of %s (UTC), read in one consistent snapshot.

Files
- export.json: one JSON object, format %q:
    "format", "exported_at", "user_id", and "tables": one list of rows per
    kind of data below, each row with its columns by name (times in UTC,
    ids as UUIDs).
- README.txt: this file.

Lists in export.json (rows; where they come from)
`, userID, at.UTC().Format(time.RFC3339), exportFormat)
	for _, e := range s.exporters {
		if e.Rows == nil {
			continue
		}
		fmt.Fprintf(&b, "- %s: %d (table %s", e.Name, counts[e.Name], strings.Join(e.Tables, ", "))
		if len(e.Omit) > 0 {
			fmt.Fprintf(&b, "; left out: %s, which are secrets", strings.Join(e.Omit, ", "))
		}
		b.WriteString(")\n")
	}
	b.WriteString("\nNot in the archive, and why\n")
	for _, e := range s.exporters {
		if e.Skip != "" {
			fmt.Fprintf(&b, "- %s: %s\n", strings.Join(e.Tables, ", "), e.Skip)
		}
	}
	b.WriteString("\nVoice notes are listed with the address of their audio and their transcription;\n" +
		"the audio stays where it was uploaded.\n")
	return b.String()
}

// PurgeExports deletes the archives whose week is over (the
// account_export_purge job); their exports stay listed as expired.
func (s *Service) PurgeExports(ctx context.Context) error {
	now := s.clock.Now()
	var due []Export
	if err := s.db.WithContext(ctx).Where("state = ? AND expires_at <= ?", stateReady, now).
		Limit(1000).Find(&due).Error; err != nil {
		return err
	}
	for _, e := range due {
		if err := os.Remove(s.cfg.archivePath(e.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete archive: %w", err)
		}
		if err := s.db.WithContext(ctx).Model(&Export{}).Where("id = ? AND state = ?", e.ID, stateReady).
			Updates(map[string]any{"state": stateExpired, "download_token": "", "download_until": nil, "updated_at": now}).Error; err != nil {
			return err
		}
	}
	if len(due) > 0 {
		s.log.Info("export archives deleted after their time", zap.Int("archives", len(due)))
	}
	return nil
}

// exportsExporter exports the user's exports (without their links' tokens).
func exportsExporter() userdata.Exporter {
	return userdata.Table("exports", "account_exports", "user_id", "download_token").Exporter
}

// exportsEraser deletes the user's archives, then their exports.
func exportsEraser(cfg Config) userdata.Eraser {
	return userdata.Eraser{Name: "exports", Tables: []string{"account_exports"},
		Erase: func(ctx context.Context, db *database.DB, userID uuid.UUID) (int64, error) {
			var ids []uuid.UUID
			if err := db.WithContext(ctx).Model(&Export{}).Where("user_id = ?", userID).Pluck("id", &ids).Error; err != nil {
				return 0, err
			}
			for _, id := range ids {
				if err := os.Remove(cfg.archivePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return 0, fmt.Errorf("delete archive: %w", err)
				}
			}
			return userdata.DeleteBatches(ctx, db, "account_exports", "user_id = ?", userID)
		}}
}
