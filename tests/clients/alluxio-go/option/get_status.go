package option

// GetStatus holds the options for fetching a path status.
type GetStatus struct{}
