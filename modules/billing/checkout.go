package billing

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/observability"
)

// CodePaymentUnavailable is the error code when payments cannot be taken
// (no provider configured, or the provider failed).
const CodePaymentUnavailable = "PAYMENT_SERVICE_UNAVAILABLE"

// checkout talks to Checkout.com: it opens hosted payment pages and checks
// the signature of the webhooks it sends.
type checkout struct {
	cfg    CheckoutConfig
	client *http.Client
}

func newCheckout(cfg Config) *checkout {
	return &checkout{cfg: cfg.Checkout, client: &http.Client{Timeout: cfg.Checkout.Timeout, Transport: observability.Outbound(nil, "checkout")}}
}

// configured reports whether payments can be taken.
func (c *checkout) configured() bool { return c.cfg.SecretKey != "" }

// hostedPaymentRequest is the body of POST /hosted-payments (the fields we
// use of Checkout.com's Hosted Payments Page API).
type hostedPaymentRequest struct {
	Amount      int               `json:"amount"`
	Currency    string            `json:"currency"`
	Reference   string            `json:"reference"`
	Description string            `json:"description"`
	Billing     hppBilling        `json:"billing"`
	Customer    *hppCustomer      `json:"customer,omitempty"`
	SuccessURL  string            `json:"success_url"`
	FailureURL  string            `json:"failure_url"`
	CancelURL   string            `json:"cancel_url"`
	Metadata    map[string]string `json:"metadata"`
}

type hppBilling struct {
	Address struct {
		Country string `json:"country"`
	} `json:"address"`
}

type hppCustomer struct {
	Email string `json:"email,omitempty"`
}

// hostedPayment is the provider's answer: the page's id, where to send the
// user, and (when it says) when the page expires.
type hostedPayment struct {
	ID        string `json:"id"`
	ExpiresOn string `json:"expires_on"`
	Links     struct {
		Redirect struct {
			Href string `json:"href"`
		} `json:"redirect"`
	} `json:"_links"`
}

// paymentPage is a page opened for a payment.
type paymentPage struct {
	Amount    int
	Currency  string
	Reference string
	Purpose   string
	UserID    string
	Email     string
	Credits   int
}

// open creates a hosted payment page and returns its id and URL.
func (c *checkout) open(ctx context.Context, p paymentPage) (*hostedPayment, error) {
	if !c.configured() {
		return nil, apperr.New(apperr.KindUnavailable, CodePaymentUnavailable,
			"payments are not configured on this server (set CHECKOUT_SECRET_KEY)")
	}
	success, failure := c.cfg.returnURLs(p.Purpose)
	req := hostedPaymentRequest{Amount: p.Amount, Currency: p.Currency, Reference: p.Reference,
		Description: "Perpetua Flow " + p.Purpose, SuccessURL: success, FailureURL: failure, CancelURL: failure,
		Metadata: map[string]string{"user_id": p.UserID, "purpose": p.Purpose}}
	req.Billing.Address.Country = c.cfg.Country
	if p.Email != "" {
		req.Customer = &hppCustomer{Email: p.Email}
	}
	if p.Credits > 0 {
		req.Metadata["credits"] = fmt.Sprint(p.Credits)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.cfg.APIURL, "/")+"/hosted-payments",
		bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+c.cfg.SecretKey)
	hr.Header.Set("Content-Type", "application/json")
	res, err := c.client.Do(hr)
	if err != nil {
		return nil, unavailable("the payment provider did not answer", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		return nil, unavailable(fmt.Sprintf("the payment provider answered %d", res.StatusCode), errors.New(string(raw)))
	}
	var hp hostedPayment
	if err := json.Unmarshal(raw, &hp); err != nil || hp.ID == "" || hp.Links.Redirect.Href == "" {
		return nil, unavailable("the payment provider's answer could not be read", err)
	}
	return &hp, nil
}

// expires is when the page stops taking payments, when the provider said.
func (hp *hostedPayment) expires() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, hp.ExpiresOn)
	return t.UTC().Truncate(time.Microsecond), err == nil
}

func unavailable(msg string, cause error) error {
	e := apperr.New(apperr.KindUnavailable, CodePaymentUnavailable, "%s; try again later", msg)
	return fmt.Errorf("%w (%v)", e, cause)
}

// deleteInstrument deletes a stored card (DELETE /instruments/{id}), so
// that the provider can charge it no more. One it does not know (404) is
// gone already.
func (c *checkout) deleteInstrument(ctx context.Context, id string) error {
	if !c.configured() {
		return errors.New("payments are not configured (CHECKOUT_SECRET_KEY): the instrument cannot be deleted")
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodDelete,
		strings.TrimRight(c.cfg.APIURL, "/")+"/instruments/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+c.cfg.SecretKey)
	res, err := c.client.Do(hr)
	if err != nil {
		return fmt.Errorf("delete instrument: %w", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	switch res.StatusCode {
	case http.StatusNoContent, http.StatusOK, http.StatusNotFound:
		return nil
	}
	return fmt.Errorf("delete instrument: the payment provider answered %d: %s", res.StatusCode, raw)
}

// verify checks a webhook's Cko-Signature: the lowercase hex HMAC-SHA256
// of the raw body with the webhook secret, compared in constant time.
func (c *checkout) verify(body []byte, signature string) bool {
	mac := hmac.New(sha256.New, []byte(c.cfg.WebhookSecret))
	mac.Write(body)
	want := mac.Sum(nil)
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	return err == nil && hmac.Equal(got, want)
}

// Event is a webhook event (the fields we read of Checkout.com's shape).
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedOn time.Time `json:"created_on"`
	Data      struct {
		ID        string `json:"id"`
		Amount    int64  `json:"amount"`
		Currency  string `json:"currency"`
		Reference string `json:"reference"`
		Source    struct {
			ID string `json:"id"`
		} `json:"source"`
		Metadata struct {
			UserID  string `json:"user_id"`
			Purpose string `json:"purpose"`
		} `json:"metadata"`
	} `json:"data"`
}

// Bounds of the event fields we store or compare: a value outside them is
// refused (400) before anything is written, never a database error the
// provider would retry for days.
const (
	maxEventID      = 200
	maxEventType    = 100
	maxPaymentCents = 100_000_000
)

// check refuses an event whose fields are out of their bounds.
func (e *Event) check() error {
	switch {
	case e.ID == "" || e.Type == "":
		return apperr.Validation("body", "not a payment event (id and type are required)")
	case len(e.ID) > maxEventID:
		return apperr.Validation("id", "must be at most %d characters", maxEventID)
	case len(e.Type) > maxEventType:
		return apperr.Validation("type", "must be at most %d characters", maxEventType)
	case len(e.Data.ID) > maxEventID:
		return apperr.Validation("data.id", "must be at most %d characters", maxEventID)
	case len(e.Data.Reference) > maxEventID || len(e.Data.Source.ID) > maxEventID:
		return apperr.Validation("data.reference", "must be at most %d characters", maxEventID)
	case e.Data.Amount < 0 || e.Data.Amount > maxPaymentCents:
		return apperr.Validation("data.amount", "must be 0-%d (minor units)", maxPaymentCents)
	}
	return nil
}

// paymentKey names the payment an event is about (its id, else the
// event's): a period or a purchase is granted once per payment.
func (e *Event) paymentKey() string {
	if e.Data.ID != "" {
		return e.Data.ID
	}
	return e.ID
}
