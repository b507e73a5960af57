package config

import (
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/spf13/pflag"
)

// bindController registers the flags of the controller's identity
// (package controller names them) on fs. In the configuration file they
// group under [controller]: name, address, email, phone, dpo-name, …
func bindController(fs *pflag.FlagSet, id *controller.Identity) {
	fs.StringVar(&id.Name, controller.FlagName, "", "the controller's legal name, stated in the record of processing, on the portal, in exports and transparency reports")
	fs.StringVar(&id.Address, controller.FlagAddress, "", "the controller's postal address, on one line")
	fs.StringVar(&id.Email, controller.FlagEmail, "", "the controller's email address for privacy matters")
	fs.StringVar(&id.Phone, controller.FlagPhone, "", "the controller's phone number, international form (+49 30 1234567)")
	fs.StringVar(&id.DPO.Name, controller.FlagDPOName, "", "the data protection officer's name, if one is designated")
	fs.StringVar(&id.DPO.Email, controller.FlagDPOEmail, "", "the data protection officer's email address")
	fs.StringVar(&id.Representative.Name, controller.FlagRepName, "", "the EU representative's name (Art. 27 GDPR; for a controller outside the EU)")
	fs.StringVar(&id.Representative.Address, controller.FlagRepAddress, "", "the EU representative's postal address, on one line")
	fs.StringVar(&id.Representative.Email, controller.FlagRepEmail, "", "the EU representative's email address")
}
