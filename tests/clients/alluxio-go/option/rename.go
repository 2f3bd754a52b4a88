package option

// Rename holds the options for renaming a path.
type Rename struct{}
