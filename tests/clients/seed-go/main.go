// The Go example of the seed (../shared/seeds/alluxio-rest-api.txt, "Example
// Usage"), changed only in host and port: "seed-go HOST PORT" instead of
// "localhost", 39999, so that it talks to the gateway.  auth.go attaches the
// authentication without touching this file.
package main

import (
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	alluxio "github.com/Alluxio/alluxio-go"
	"github.com/Alluxio/alluxio-go/option"
)

func write(fs *alluxio.Client, path, s string) error {
	id, err := fs.CreateFile(path, &option.CreateFile{})
	if err != nil {
		return err
	}
	defer fs.Close(id)
	_, err = fs.Write(id, strings.NewReader(s))
	return err
}

func read(fs *alluxio.Client, path string) (string, error) {
	id, err := fs.OpenFile(path, &option.OpenFile{})
	if err != nil {
		return "", err
	}
	defer fs.Close(id)
	r, err := fs.Read(id)
	if err != nil {
		return "", err
	}
	defer r.Close()
	content, err := ioutil.ReadAll(r)
	if err != nil {
		return "", err
	}
	return string(content), err
}

func main() {
	host, port := proxyAddress()
	fs := alluxio.NewClient(host, port, 10*time.Second)
	path := "/test_path"
	exists, err := fs.Exists(path, &option.Exists{})
	if err != nil {
		log.Fatal(err)
	}
	if exists {
		if err := fs.Delete(path, &option.Delete{}); err != nil {
			log.Fatal(err)
		}
	}
	if err := write(fs, path, "Success"); err != nil {
		log.Fatal(err)
	}
	content, err := read(fs, path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Result: %v\n", content)
}

// proxyAddress is the seed's "localhost", 39999 taken from the command line.
func proxyAddress() (string, int) {
	if len(os.Args) != 3 {
		log.Fatalf("usage: %s HOST PORT", os.Args[0])
	}
	port, err := strconv.Atoi(os.Args[2])
	if err != nil || port < 1 || port > 65535 {
		log.Fatalf("PORT must be a number from 1 to 65535, not %q", os.Args[2])
	}
	return os.Args[1], port
}
