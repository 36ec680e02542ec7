package server

import (
	"bytes"
	"embed"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/swaggest/swgui/v5emb"
)

// The documentation pages work offline: Swagger UI comes embedded with
// swgui, ReDoc's standalone bundle (2.5.0, MIT, see assets/) is embedded
// here, its footer's logo pointed at our own copy. Neither page loads
// anything from another host (which the pages' CSP would refuse anyway).

//go:embed assets/redoc.standalone.js assets/logo-mini.svg
var assets embed.FS

// redocLogo is where ReDoc's bundle looks for its footer logo, and where we
// serve it instead.
const (
	redocLogoCDN   = "https://cdn.redoc.ly/redoc/logo-mini.svg"
	redocLogoLocal = "/redoc/logo-mini.svg"
)

// redocPage renders /openapi.json with ReDoc (Swagger UI is at /docs).
const redocPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Perpetua Flow API - ReDoc</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="/redoc/redoc.standalone.js"></script>
</body>
</html>`

// registerDocs serves /docs (Swagger UI) and /redoc (ReDoc).
func registerDocs(app *fiber.App) {
	swagger := adaptor.HTTPHandler(v5emb.New("Perpetua Flow API", "/openapi.json", "/docs/"))
	app.Get("/docs", swagger)
	app.Get("/docs/*", swagger)
	app.Get("/redoc", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString(redocPage)
	})
	bundle, _ := assets.ReadFile("assets/redoc.standalone.js")
	bundle = bytes.Replace(bundle, []byte(redocLogoCDN), []byte(redocLogoLocal), 1)
	app.Get("/redoc/redoc.standalone.js", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
		c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
		return c.Send(bundle)
	})
	logo, _ := assets.ReadFile("assets/logo-mini.svg")
	app.Get(redocLogoLocal, func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "image/svg+xml")
		c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
		return c.Send(logo)
	})
}
