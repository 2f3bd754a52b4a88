// Package option contains types for method options.
package option
