package web

import (
	"fmt"
	"net/http"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// The portal's words come from a message catalogue (golang.org/x/text):
// templates write English keys through view.T, and the language is chosen
// by the request's Accept-Language among the catalogue's languages. German
// covers the page frame (menu, footer, error summary), the home page and
// the devices page, which proves the mechanism; other text falls back to
// English.

// languages are the catalogue's languages, the fallback first.
var languages = []language.Tag{language.English, language.German}

// germanMessages returns the German text of each English key. It is a
// function so that the table cannot be changed at run time.
func germanMessages() map[string]string {
	return map[string]string{
		// Frame.
		"Skip to content":                 "Zum Inhalt springen",
		"Menu":                            "Menü",
		"Main":                            "Hauptmenü",
		"Devices":                         "Geräte",
		"Usage":                           "Nutzung",
		"Inbox":                           "Posteingang",
		"Privacy centre":                  "Datenschutz-Center",
		"Account":                         "Konto",
		"Log out":                         "Abmelden",
		"Privacy":                         "Datenschutz",
		"Log in":                          "Anmelden",
		"Sign up":                         "Registrieren",
		"Nitronet keeps no traffic logs.": "Nitronet speichert keine Verbindungsprotokolle.",
		"Privacy policy":                  "Datenschutzerklärung",
		"Policy history":                  "Frühere Fassungen",
		"What we keep":                    "Was wir speichern",
		"Your privacy rights":             "Ihre Datenschutzrechte",
		"There is a problem":              "Es gibt ein Problem",
		"Check the fields listed below.":  "Bitte prüfen Sie die unten genannten Felder.",
		// Home page.
		"A VPN that keeps only what it must": "Ein VPN, das nur speichert, was es muss",
		"Nitronet carries your traffic through an encrypted WireGuard tunnel to where you send it, and writes nothing about it.": "Nitronet bringt Ihren Datenverkehr durch einen verschlüsselten WireGuard-Tunnel ans Ziel und schreibt nichts darüber auf.",
		"Create an account":      "Konto anlegen",
		"Regions":                "Regionen",
		"Apps":                   "Apps",
		"No logs":                "Keine Protokolle",
		"No region is open yet.": "Noch ist keine Region geöffnet.",
		"Use the official WireGuard app on each device:": "Nutzen Sie auf jedem Gerät die offizielle WireGuard-App:",
		"No traffic logs, by design":                     "Keine Verbindungsprotokolle, schon vom Aufbau her",
		"Gateways never record where you connect from, where you go, what you look up or how much you send. We keep only what the inventory lists, for the periods it states.": "Gateways zeichnen nie auf, woher Sie sich verbinden, wohin Sie gehen, was Sie nachschlagen oder wie viel Sie senden. Wir speichern nur, was das Verzeichnis nennt, so lange es angibt.",
		"See everything we keep, why, and for how long": "Alles, was wir speichern, warum und wie lange",
		// Devices page.
		"Add a device":             "Gerät hinzufügen",
		"%d of %d devices":         "%d von %d Geräten",
		"Connected now":            "Jetzt verbunden",
		"Not connected":            "Nicht verbunden",
		"Last used":                "Zuletzt genutzt",
		"Never used":               "Noch nie genutzt",
		"Not recorded":             "Nicht aufgezeichnet",
		"Region":                   "Region",
		"Key age":                  "Alter des Schlüssels",
		"Tunnel addresses":         "Tunnel-Adressen",
		"Public key":               "Öffentlicher Schlüssel",
		"Added":                    "Hinzugefügt",
		"Edit":                     "Bearbeiten",
		"Rename":                   "Umbenennen",
		"New name":                 "Neuer Name",
		"Rotate key":               "Schlüssel erneuern",
		"DNS blocking":             "DNS-Sperre",
		"none":                     "keine",
		"Save":                     "Speichern",
		"Remove this device":       "Dieses Gerät entfernen",
		"You have no devices yet.": "Sie haben noch keine Geräte.",
		"Get the WireGuard app for your device, then add it here:": "Laden Sie die WireGuard-App für Ihr Gerät und fügen Sie es dann hier hinzu:",
		"today":   "heute",
		"1 day":   "1 Tag",
		"%d days": "%d Tage",
		"The device's settings are saved: renamed if you gave a new name. A new DNS blocking choice applies once the device fetches its configuration again.": "Die Einstellungen des Geräts sind gespeichert: umbenannt, wenn Sie einen neuen Namen angegeben haben. Eine neue Wahl der DNS-Sperre gilt, sobald das Gerät seine Konfiguration neu abruft.",
		"The device has been removed. It can no longer connect.": "Das Gerät wurde entfernt. Es kann sich nicht mehr verbinden.",
	}
}

// newCatalog builds the catalogue: every German key also as English.
func newCatalog() (*catalog.Builder, error) {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	for en, de := range germanMessages() {
		if err := b.SetString(language.English, en, en); err != nil {
			return nil, fmt.Errorf("web: catalogue: %w", err)
		}
		if err := b.SetString(language.German, en, de); err != nil {
			return nil, fmt.Errorf("web: catalogue: %w", err)
		}
	}
	return b, nil
}

// printer returns the message printer for r's Accept-Language and the
// chosen language's tag (for <html lang>).
func (h *Handler) printer(r *http.Request) (*message.Printer, string) {
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := h.matcher.Match(tags...)
	tag := languages[i]
	return message.NewPrinter(tag, message.Catalog(h.catalog)), tag.String()
}

// T returns the text of key (an English message, a fmt format) in the
// page's language, formatted with args.
func (v *view) T(key string, args ...any) string {
	if v.printer == nil {
		return fmt.Sprintf(key, args...)
	}
	return v.printer.Sprintf(key, args...)
}
