// Package alluxio provides the Alluxio file system client.
package alluxio
