package option

// Unmount holds the options for unmounting a path.
type Unmount struct{}
