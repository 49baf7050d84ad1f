package main

// Signature Version 4 checking for g8s-s3: with --access-key-id, every request must carry an
// Authorization header whose signature AWS's own signer (aws-sdk-go-v2's v4 package) computes
// again from the request's signed headers, and a body matching its x-amz-content-sha256. What
// a client signs wrongly fails here as it would on S3: 403 with S3's error code.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const amzDateLayout = "20060102T150405Z"

// maxSkew is how far a request's X-Amz-Date may be from the store's clock (S3 allows 15 min).
const maxSkew = 15 * time.Minute

type sigv4Check struct {
	accessKeyID string
	secret      string
	next        http.Handler
	signer      *v4.Signer
}

func newSigv4Check(accessKeyID, secret string, next http.Handler) *sigv4Check {
	return &sigv4Check{accessKeyID: accessKeyID, secret: secret, next: next, signer: v4.NewSigner()}
}

type s3Error struct {
	XMLName xml.Name `xml:"Error"`
	Code    string   `xml:"Code"`
	Message string   `xml:"Message"`
}

type refusal struct {
	status  int
	code    string
	message string
}

func (c *sigv4Check) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if bad := c.verify(r); bad != nil {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(bad.status)
		body, _ := xml.Marshal(s3Error{Code: bad.code, Message: bad.message})
		_, _ = w.Write(append([]byte(xml.Header), body...))
		return
	}
	c.next.ServeHTTP(w, r)
}

// authorization is the parsed `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
type authorization struct {
	accessKeyID, day, region, service string
	signedHeaders                     []string
	signature                         string
}

func parseAuthorization(header string) (authorization, bool) {
	var a authorization
	rest, ok := strings.CutPrefix(header, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		key, value, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return a, false
		}
		switch key {
		case "Credential":
			scope := strings.Split(value, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return a, false
			}
			a.accessKeyID, a.day, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(value, ";")
		case "Signature":
			a.signature = value
		}
	}
	return a, a.accessKeyID != "" && a.signature != "" && len(a.signedHeaders) > 0
}

func (c *sigv4Check) verify(r *http.Request) *refusal {
	a, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return &refusal{http.StatusForbidden, "AccessDenied", "no AWS4-HMAC-SHA256 Authorization header"}
	}
	if a.accessKeyID != c.accessKeyID {
		return &refusal{http.StatusForbidden, "InvalidAccessKeyId", "the access key id is not known to this store"}
	}
	if a.service != "s3" {
		return &refusal{http.StatusForbidden, "SignatureDoesNotMatch", "the credential scope is not for s3"}
	}
	when, err := time.Parse(amzDateLayout, r.Header.Get("X-Amz-Date"))
	if err != nil || when.Format("20060102") != a.day {
		return &refusal{http.StatusForbidden, "AccessDenied", "X-Amz-Date is missing or not the credential's day"}
	}
	if skew := time.Since(when); skew > maxSkew || skew < -maxSkew {
		return &refusal{http.StatusForbidden, "RequestTimeTooSkewed", fmt.Sprintf("X-Amz-Date is %s from the store's clock", skew)}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return &refusal{http.StatusBadRequest, "InvalidRequest", "x-amz-content-sha256 is missing"}
	}
	if payload != "UNSIGNED-PAYLOAD" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return &refusal{http.StatusBadRequest, "IncompleteBody", err.Error()}
		}
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != payload {
			return &refusal{http.StatusBadRequest, "XAmzContentSHA256Mismatch", "the body does not match x-amz-content-sha256"}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	// The request as the client signed it: only its signed headers, its host, path and query.
	signed := r.Clone(r.Context())
	signed.Header = http.Header{}
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			signed.ContentLength = r.ContentLength
		default:
			signed.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	signed.URL.Scheme, signed.URL.Host = "http", r.Host
	creds := aws.Credentials{AccessKeyID: c.accessKeyID, SecretAccessKey: c.secret}
	err = c.signer.SignHTTP(r.Context(), creds, signed, payload, a.service, a.region, when,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		return &refusal{http.StatusForbidden, "SignatureDoesNotMatch", err.Error()}
	}
	expected, ok := parseAuthorization(signed.Header.Get("Authorization"))
	if !ok || strings.Join(expected.signedHeaders, ";") != strings.Join(a.signedHeaders, ";") ||
		!hmac.Equal([]byte(expected.signature), []byte(a.signature)) {
		return &refusal{http.StatusForbidden, "SignatureDoesNotMatch",
			"the request signature we calculated does not match the signature you provided"}
	}
	return nil
}
