package demo

// DemoPassword is the password of every account returned by [DemoUsers].
const DemoPassword = "demo"

// DemoUsers returns the built-in DEMO-ONLY accounts for a realm label such as "acme"
// ("" means "example"). Every account has the password [DemoPassword]; the subject is
// "<realm>-<username>" and the email "<username>@<realm>.example":
//
//	username  groups               email
//	alice     admins, engineering  verified
//	bob       engineering          verified
//	carol     (none)               NOT verified
//
// Each call returns new slices, so callers may modify the result.
func DemoUsers(realm string) []User {
	if realm == "" {
		realm = "example"
	}
	user := func(username, name string, verified bool, groups ...string) User {
		return User{
			ID:            realm + "-" + username,
			Username:      username,
			Password:      DemoPassword,
			Name:          name,
			Email:         username + "@" + realm + ".example",
			EmailVerified: verified,
			Groups:        groups,
		}
	}
	return []User{
		user("alice", "Alice Anderson", true, "admins", "engineering"),
		user("bob", "Bob Brown", true, "engineering"),
		user("carol", "Carol Clark", false),
	}
}
