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
	"strings"
	"time"

	"github.com/perpetuaflow/api/platform/apperr"
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
	return &checkout{cfg: cfg.Checkout, client: &http.Client{Timeout: cfg.Checkout.Timeout}}
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

// hostedPayment is the provider's answer: the page's id and where to send
// the user.
type hostedPayment struct {
	ID    string `json:"id"`
	Links struct {
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
	req := hostedPaymentRequest{Amount: p.Amount, Currency: p.Currency, Reference: p.Reference,
		Description: "Perpetua Flow " + p.Purpose, SuccessURL: c.cfg.SuccessURL, FailureURL: c.cfg.FailureURL,
		CancelURL: c.cfg.CancelURL,
		Metadata:  map[string]string{"user_id": p.UserID, "purpose": p.Purpose}}
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

func unavailable(msg string, cause error) error {
	e := apperr.New(apperr.KindUnavailable, CodePaymentUnavailable, "%s; try again later", msg)
	return fmt.Errorf("%w (%v)", e, cause)
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
		Amount    int    `json:"amount"`
		Currency  string `json:"currency"`
		Reference string `json:"reference"`
		Metadata  struct {
			UserID  string          `json:"user_id"`
			Purpose string          `json:"purpose"`
			Credits json.RawMessage `json:"credits"`
		} `json:"metadata"`
	} `json:"data"`
}

// credits reads metadata.credits, sent as a number or a string.
func (e *Event) credits() int {
	var n int
	if json.Unmarshal(e.Data.Metadata.Credits, &n) == nil {
		return n
	}
	var s string
	if json.Unmarshal(e.Data.Metadata.Credits, &s) == nil {
		fmt.Sscan(s, &n)
	}
	return n
}
