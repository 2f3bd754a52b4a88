// Package wire contains Alluxio file system wire types.
package wire
