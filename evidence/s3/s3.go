// Package s3 keeps evidence bundles in an S3-compatible bucket (AWS S3,
// GCS in S3 mode, MinIO, Ceph) through minio-go: each file of a bundle is
// the object <prefix><rollback id>/<path>, written once.
//
// Credentials come from files (a mounted Secret), the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or, without either, the
// instance or pod identity (IAM roles, IRSA); they are never logged nor
// written into a bundle.
package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	rewind "github.com/rewind-sre/rewind"
)

// Config says where bundles go.
type Config struct {
	// Endpoint is the S3 API's host[:port], e.g. s3.amazonaws.com,
	// storage.googleapis.com or minio.storage.svc:9000.
	Endpoint string
	Bucket   string
	// Prefix is put before every bundle's objects, e.g. "rewind/" (a
	// trailing slash is added when missing).
	Prefix string
	Region string // optional
	// Insecure talks plain HTTP (a MinIO inside the cluster without TLS).
	Insecure bool
	// CAFile is a PEM bundle of extra CAs for the endpoint's certificate.
	CAFile string
	// AccessKeyFile and SecretKeyFile hold the credentials (a mounted
	// Secret). Empty: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else the
	// IAM identity of the instance or pod.
	AccessKeyFile string
	SecretKeyFile string
	// Timeout bounds one request (default 30 s).
	Timeout time.Duration
	// MaxFileBytes refuses to upload a larger file (default 256 MiB): a
	// bundle never grows without bound.
	MaxFileBytes int64
}

// Store is a rewind.EvidenceStore on one bucket. It is safe for concurrent use.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
	max    int64
}

var _ rewind.EvidenceStore = (*Store)(nil)

// New checks cfg and builds the client; it does not talk to the endpoint.
func New(cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3 evidence: needs an endpoint and a bucket")
	}
	if strings.Contains(cfg.Endpoint, "/") {
		return nil, fmt.Errorf("s3 evidence: endpoint %q: want host[:port], without a scheme or path", cfg.Endpoint)
	}
	creds, err := credentialsOf(cfg)
	if err != nil {
		return nil, err
	}
	tr, err := transport(cfg)
	if err != nil {
		return nil, err
	}
	// One try per request: the caller (evidence.Archive) retries, with a
	// bound it knows.
	c, err := minio.New(cfg.Endpoint, &minio.Options{Creds: creds, Secure: !cfg.Insecure, Region: cfg.Region, Transport: tr, MaxRetries: 1})
	if err != nil {
		return nil, fmt.Errorf("s3 evidence: %w", err)
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	maxBytes := cfg.MaxFileBytes
	if maxBytes <= 0 {
		maxBytes = 256 << 20
	}
	return &Store{c: c, bucket: cfg.Bucket, prefix: strings.TrimPrefix(prefix, "/"), max: maxBytes}, nil
}

func credentialsOf(cfg Config) (*credentials.Credentials, error) {
	if cfg.AccessKeyFile != "" || cfg.SecretKeyFile != "" {
		if cfg.AccessKeyFile == "" || cfg.SecretKeyFile == "" {
			return nil, errors.New("s3 evidence: set both the access key file and the secret key file, or neither")
		}
		id, err := readSecret(cfg.AccessKeyFile)
		if err != nil {
			return nil, err
		}
		secret, err := readSecret(cfg.SecretKeyFile)
		if err != nil {
			return nil, err
		}
		return credentials.NewStaticV4(id, secret, ""), nil
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.IAM{Client: &http.Client{Timeout: 10 * time.Second}},
	}), nil
}

func readSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("s3 evidence: reading a credential: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("s3 evidence: the credential file %s is empty", file)
	}
	return s, nil
}

func transport(cfg Config) (http.RoundTripper, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tr, err := minio.DefaultTransport(!cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("s3 evidence: %w", err)
	}
	tr.ResponseHeaderTimeout = timeout
	tr.TLSHandshakeTimeout = min(timeout, 10*time.Second)
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3 evidence: CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3 evidence: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return tr, nil
}

// Location is the URL of rollback id's bundle.
func (s *Store) Location(id string) string {
	return "s3://" + s.bucket + "/" + s.dir(id)
}

func (s *Store) dir(id string) string { return s.prefix + id + "/" }

// Put uploads every regular file under dir as id's bundle, INDEX.md last
// (its presence says the bundle is whole), each once; see
// rewind.EvidenceStore.
func (s *Store) Put(ctx context.Context, id, dir string) (string, error) {
	if err := rewind.ValidRollbackID(id); err != nil {
		return "", fmt.Errorf("s3 evidence: %w", err)
	}
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("s3 evidence: reading the bundle %s: %w", dir, err)
	}
	// INDEX.md last.
	for i, f := range files {
		if f == "INDEX.md" {
			files = append(append(files[:i:i], files[i+1:]...), f)
			break
		}
	}
	for _, f := range files {
		if err := s.putOnce(ctx, s.dir(id)+f, filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			return "", err
		}
	}
	return s.Location(id), nil
}

// putOnce uploads file as key unless key exists: a stat first, then a
// conditional write (If-None-Match: *) for a writer that raced it.
func (s *Store) putOnce(ctx context.Context, key, file string) error {
	if _, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err == nil {
		return nil
	} else if minio.ToErrorResponse(err).Code != minio.NoSuchKey && minio.ToErrorResponse(err).StatusCode != http.StatusNotFound {
		return fmt.Errorf("s3 evidence: s3://%s/%s: %w", s.bucket, key, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("s3 evidence: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("s3 evidence: %w", err)
	}
	if info.Size() > s.max {
		return fmt.Errorf("s3 evidence: %s is %d bytes, more than the %d a bundle file may have", file, info.Size(), s.max)
	}
	opts := minio.PutObjectOptions{ContentType: contentType(key)}
	opts.SetMatchETagExcept("*")
	_, err = s.c.PutObject(ctx, s.bucket, key, f, info.Size(), opts)
	if err != nil && minio.ToErrorResponse(err).StatusCode == http.StatusPreconditionFailed {
		return nil // written meanwhile by another writer: once
	}
	if err != nil {
		return fmt.Errorf("s3 evidence: writing s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}

func contentType(key string) string {
	switch path.Ext(key) {
	case ".json":
		return "application/json"
	case ".md":
		return "text/markdown; charset=utf-8"
	case ".yaml":
		return "application/yaml"
	case ".log", ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// Files lists the files of id's bundle.
func (s *Store) Files(ctx context.Context, id string) ([]string, error) {
	prefix := s.dir(id)
	var out []string
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("s3 evidence: listing s3://%s/%s: %w", s.bucket, prefix, o.Err)
		}
		out = append(out, strings.TrimPrefix(o.Key, prefix))
	}
	return out, nil
}

// Open reads one file of id's bundle.
func (s *Store) Open(ctx context.Context, id, name string) (io.ReadCloser, error) {
	key := s.dir(id) + name
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3 evidence: reading s3://%s/%s: %w", s.bucket, key, err)
	}
	if _, err := o.Stat(); err != nil {
		o.Close()
		return nil, fmt.Errorf("s3 evidence: reading s3://%s/%s: %w", s.bucket, key, err)
	}
	return o, nil
}

// Check reads the bucket once: a clear error at start when it is missing
// or the credentials are wrong.
func (s *Store) Check(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3 evidence: bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3 evidence: bucket %s does not exist", s.bucket)
	}
	return nil
}

// ParseURL reads s3://BUCKET[/PREFIX] into a Config's Bucket and Prefix.
func ParseURL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("s3 evidence: %q: want s3://BUCKET[/PREFIX]", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("s3 evidence: %q names no bucket", u)
	}
	return bucket, prefix, nil
}
