package privacy

// SetEraseHook sets the hook passed to store.Erasure.Hook, for
// fault-injection tests.
func SetEraseHook(s *Service, fn func(step string) error) { s.eraseHook = fn }
