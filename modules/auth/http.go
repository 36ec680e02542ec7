package auth

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/httpx"
)

// UserDTO is the User of the API.
type UserDTO struct {
	ID        uuid.UUID `json:"id" format:"uuid"`
	GoogleID  string    `json:"google_id"`
	Email     string    `json:"email" format:"email"`
	Name      string    `json:"name"`
	AvatarURL *string   `json:"avatar_url" nullable:"true"`
	Timezone  string    `json:"timezone" example:"Europe/Berlin"`
	Tier      string    `json:"tier" enum:"free,pro"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toUserDTO(u *User) UserDTO {
	return UserDTO{ID: u.ID, GoogleID: u.GoogleID, Email: u.Email, Name: u.Name, AvatarURL: u.AvatarURL,
		Timezone: u.Timezone, Tier: u.Tier, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

// TokenPair is the answer of a refresh (no envelope, as the client expects).
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type" enum:"Bearer"`
	ExpiresIn    int    `json:"expires_in" doc:"Access token lifetime in seconds"`
}

// SignIn is the answer of a sign-in: the pair and the user.
type SignIn struct {
	TokenPair
	User UserDTO `json:"user"`
}

func pairOf(t *Tokens) TokenPair {
	return TokenPair{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn}
}

type handlers struct {
	svc *Service
	cfg Config
}

func newHandlers(svc *Service, cfg Config) *handlers { return &handlers{svc: svc, cfg: cfg} }

type googleInput struct {
	Body struct {
		IDToken string `json:"id_token" minLength:"1" maxLength:"8192" doc:"Google ID token from Google Identity Services"`
	} `nameHint:"GoogleSignInRequest"`
}

type devLoginInput struct {
	Body struct {
		Email string `json:"email" format:"email" maxLength:"320"`
		Name  string `json:"name,omitempty" maxLength:"100"`
	} `nameHint:"DevLoginRequest"`
}

type refreshInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"512"`
	} `nameHint:"RefreshRequest"`
}

type logoutInput struct {
	Authorization string `header:"Authorization" doc:"Bearer access token: its session ends (optional)"`
	Body          *struct {
		RefreshToken string `json:"refresh_token,omitempty" maxLength:"512"`
	} `nameHint:"LogoutRequest"`
}

type signInOutput struct{ Body SignIn }

type pairOutput struct{ Body TokenPair }

type jwksOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         JWKS
}

type loggedOut struct {
	LoggedOut bool `json:"logged_out"`
}

type updateMeInput struct {
	Body struct {
		Name     *string `json:"name,omitempty" minLength:"1" maxLength:"100"`
		Timezone *string `json:"timezone,omitempty" maxLength:"64" example:"Europe/Berlin" doc:"IANA time zone name"`
	} `nameHint:"UserUpdate"`
}

func authRoute(method, path, id, summary string) huma.Operation {
	return httpx.WithRateLimit(httpx.Public(httpx.Route(method, path, id, summary, "Auth")), httpx.RateAuth)
}

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, authRoute(http.MethodPost, "/api/v1/auth/google/callback", "auth-google",
		"Sign in with a Google ID token"), h.google)
	huma.Register(api, authRoute(http.MethodPost, "/api/v1/auth/refresh", "auth-refresh",
		"Rotate a refresh token into a new token pair"), h.refresh)
	huma.Register(api, authRoute(http.MethodPost, "/api/v1/auth/logout", "auth-logout",
		"End the session of the bearer token and of the refresh token (idempotent)"), h.logout)
	if h.cfg.DevLogin {
		huma.Register(api, authRoute(http.MethodPost, "/api/v1/auth/dev/login", "auth-dev-login",
			"Development only: sign in by email"), h.devLogin)
	}
	jwks := httpx.Public(httpx.Route(http.MethodGet, "/api/v1/.well-known/jwks.json", "auth-jwks",
		"Public keys that verify access tokens", "Auth"))
	huma.Register(api, jwks, h.jwks)
	root := jwks
	root.Path, root.OperationID = "/.well-known/jwks.json", "auth-jwks-root"
	huma.Register(api, root, h.jwks)

	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/users/me", "users-me", "The signed-in user", "Users"),
		httpx.Handle(Caller, h.me, toUserDTO))
	huma.Register(api, httpx.Route(http.MethodPatch, "/api/v1/users/me", "users-me-update",
		"Change the signed-in user's name or timezone", "Users"), httpx.Handle(Caller, h.updateMe, toUserDTO))
}

func (h *handlers) google(ctx context.Context, in *googleInput) (*signInOutput, error) {
	t, err := h.svc.SignInWithGoogle(ctx, in.Body.IDToken)
	if err != nil {
		return nil, err
	}
	return &signInOutput{Body: SignIn{TokenPair: pairOf(t), User: toUserDTO(&t.User)}}, nil
}

func (h *handlers) devLogin(ctx context.Context, in *devLoginInput) (*signInOutput, error) {
	t, err := h.svc.DevLogin(ctx, in.Body.Email, in.Body.Name)
	if err != nil {
		return nil, err
	}
	return &signInOutput{Body: SignIn{TokenPair: pairOf(t), User: toUserDTO(&t.User)}}, nil
}

func (h *handlers) refresh(ctx context.Context, in *refreshInput) (*pairOutput, error) {
	t, err := h.svc.Refresh(ctx, in.Body.RefreshToken)
	if err != nil {
		return nil, err
	}
	return &pairOutput{Body: pairOf(t)}, nil
}

func (h *handlers) logout(ctx context.Context, in *logoutInput) (*httpx.DataOutput[loggedOut], error) {
	token := ""
	if in.Body != nil {
		token = in.Body.RefreshToken
	}
	bearer, _ := httpx.BearerToken(in.Authorization)
	if err := h.svc.Logout(ctx, bearer, token); err != nil {
		return nil, err
	}
	return httpx.Reply(loggedOut{LoggedOut: true}), nil
}

func (h *handlers) jwks(ctx context.Context, _ *struct{}) (*jwksOutput, error) {
	return &jwksOutput{CacheControl: "public, max-age=300", Body: h.svc.JWKS()}, nil
}

func (h *handlers) me(ctx context.Context, p Principal, _ *struct{}) (*User, error) {
	return h.svc.Me(ctx, p)
}

func (h *handlers) updateMe(ctx context.Context, p Principal, in *updateMeInput) (*User, error) {
	return h.svc.UpdateMe(ctx, p, ProfileChanges{Name: in.Body.Name, Timezone: in.Body.Timezone})
}
