package main

// Authentication for the seed program, attached without changing it: the
// alluxio-go client's http.Client has no Transport of its own, so every
// request goes through http.DefaultTransport, which init replaces according
// to SEED_AUTH (the gateway's scheme names):
//
//	SEED_AUTH=simple    user.name=$HADOOP_USER_NAME added to every query (pseudo authentication)
//	SEED_AUTH=kerberos  a SPNEGO "Authorization: Negotiate" header on every request, from the
//	                    ticket in $KRB5CCNAME (FILE: caches only) and the realm in $KRB5_CONFIG
//	unset or "none"     nothing: the seed exactly as written (the gateway answers 401)

import (
	"log"
	"net/http"
	"os"

	spnego "github.com/dpotapov/go-spnego"
)

func init() {
	switch scheme := os.Getenv("SEED_AUTH"); scheme {
	case "", "none":
	case "simple":
		user := os.Getenv("HADOOP_USER_NAME")
		if user == "" {
			log.Fatal("SEED_AUTH=simple needs the user name in HADOOP_USER_NAME")
		}
		http.DefaultTransport = &pseudoTransport{user: user, next: http.DefaultTransport}
	case "kerberos":
		http.DefaultTransport = &spnego.Transport{}
	default:
		log.Fatalf("SEED_AUTH=%q: use simple, kerberos or none", scheme)
	}
}

// pseudoTransport names the user in every request's query, as hadoop-auth's
// pseudo authentication wants; the request it was given stays unchanged.
type pseudoTransport struct {
	user string
	next http.RoundTripper
}

func (t *pseudoTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	named := req.Clone(req.Context())
	query := named.URL.Query()
	query.Set("user.name", t.user)
	named.URL.RawQuery = query.Encode()
	return t.next.RoundTrip(named)
}
