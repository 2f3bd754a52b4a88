package option

// Exists holds the options for checking whether a path exists.
type Exists struct{}
