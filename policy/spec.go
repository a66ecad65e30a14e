package policy

import (
	"time"

	"github.com/prometheus/common/model"
)

// Duration is a Prometheus-syntax duration (30s, 5m, 1h30m).
type Duration time.Duration

func (d *Duration) decodeScalar(s string) error {
	v, err := model.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return model.Duration(d).String() }

// The types below mirror the YAML of policy v1 (docs/policy.md) field by field.
// They are decoded strictly, then compiled into Policy.

type fileSpec struct {
	APIVersion string                  `yaml:"apiVersion"`
	Kind       string                  `yaml:"kind"`
	Systems    []systemSpec            `yaml:"systems"`
	Notifiers  map[string]notifierSpec `yaml:"notifiers"`
}

type systemSpec struct {
	Name       string          `yaml:"name"`
	Interval   *Duration       `yaml:"interval"`
	Prometheus *prometheusSpec `yaml:"prometheus"`
	Canary     *selectorSpec   `yaml:"canary"`
	Baseline   *selectorSpec   `yaml:"baseline"`
	Traffic    *trafficSpec    `yaml:"traffic"`
	Triggers   []triggerSpec   `yaml:"triggers"`
	Rollback   *rollbackSpec   `yaml:"rollback"`
	Notify     []string        `yaml:"notify"`
	Watch      *watchSpec      `yaml:"watch"` // a rollout-watch system (watch.go)
}

type prometheusSpec struct {
	URL                string         `yaml:"url"`
	Timeout            *Duration      `yaml:"timeout"`
	BearerTokenFile    string         `yaml:"bearerTokenFile"`
	BasicAuth          *basicAuthSpec `yaml:"basicAuth"`
	CAFile             string         `yaml:"caFile"`
	InsecureSkipVerify bool           `yaml:"insecureSkipVerify"`
	MaxInFlight        *int           `yaml:"maxInFlight"`
}

type basicAuthSpec struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"passwordFile"`
}

type selectorSpec struct {
	Selector string `yaml:"selector"`
}

type trafficSpec struct {
	Query   string   `yaml:"query"`
	AtLeast *float64 `yaml:"atLeast"`
}

type triggerSpec struct {
	Name      string     `yaml:"name"`
	Query     string     `yaml:"query"`
	Canary    string     `yaml:"canary"`
	Baseline  string     `yaml:"baseline"`
	Expr      string     `yaml:"expr"`
	Judge     *judgeSpec `yaml:"judge"`
	Probe     *probeSpec `yaml:"probe"`
	Condition string     `yaml:"condition"`
	For       *Duration  `yaml:"for"`
	Severity  string     `yaml:"severity"`
	Action    string     `yaml:"action"`
	OnNoData  string     `yaml:"onNoData"`
}

type probeSpec struct {
	URL          string    `yaml:"url"`
	ExpectStatus []int     `yaml:"expectStatus"`
	MaxLatency   *Duration `yaml:"maxLatency"`
	BodyMatch    string    `yaml:"bodyMatch"`
	Timeout      *Duration `yaml:"timeout"`
}

type judgeSpec struct {
	Test      string   `yaml:"test"`
	Bad       string   `yaml:"bad"`
	Total     string   `yaml:"total"`
	Buckets   string   `yaml:"buckets"`
	Quantile  *float64 `yaml:"quantile"`
	MinEffect *float64 `yaml:"minEffect"`
	Above     *float64 `yaml:"above"`
	Alpha     *float64 `yaml:"alpha"`
	Direction string   `yaml:"direction"`
	// Sequential: evidence from an anytime-valid test on each interval's
	// counts, accumulated over the trigger's active run (docs/judge.md).
	Sequential *bool `yaml:"sequential"`
}

type rollbackSpec struct {
	Mode       string              `yaml:"mode"`
	Kubernetes *kubernetesSpec     `yaml:"kubernetes"`
	Istio      *istioSpec          `yaml:"istio"`
	Drain      *drainSpec          `yaml:"drain"`
	Exec       map[string]execSpec `yaml:"exec"`
	Webhook    map[string]hookSpec `yaml:"webhook"`
	Verify     *verifySpec         `yaml:"verify"`
	Evidence   *evidenceSpec       `yaml:"evidence"`
	GitOps     *gitopsSpec         `yaml:"gitops"`
}

type kubernetesSpec struct {
	Namespace   string `yaml:"namespace"`
	Deployment  string `yaml:"deployment"`
	ScaleToZero bool   `yaml:"scaleToZero"`
	Kubeconfig  string `yaml:"kubeconfig"`
}

type istioSpec struct {
	Namespace      string `yaml:"namespace"`
	VirtualService string `yaml:"virtualService"`
	BaselineHost   string `yaml:"baselineHost"`
	CanaryHost     string `yaml:"canaryHost"`
}

type execSpec struct {
	Command []string  `yaml:"command"`
	Timeout *Duration `yaml:"timeout"`
}

type hookSpec struct {
	URL        string    `yaml:"url"`
	SecretFile string    `yaml:"secretFile"`
	SecretEnv  string    `yaml:"secretEnv"`
	Timeout    *Duration `yaml:"timeout"`
}

type drainSpec struct {
	Query  string    `yaml:"query"`
	Below  *float64  `yaml:"below"`
	Within *Duration `yaml:"within"`
}

type verifySpec struct {
	Condition string    `yaml:"condition"`
	Query     string    `yaml:"query"`
	For       *Duration `yaml:"for"`
	Timeout   *Duration `yaml:"timeout"`
}

type evidenceSpec struct {
	LogTailLines *int   `yaml:"logTailLines"`
	Dir          string `yaml:"dir"`
}

type notifierSpec struct {
	Slack     *slackSpec     `yaml:"slack"`
	PagerDuty *pagerDutySpec `yaml:"pagerduty"`
	Email     *emailSpec     `yaml:"email"`
	Webhook   *webhookSpec   `yaml:"webhook"`
}

type slackSpec struct {
	WebhookURLFile string `yaml:"webhookURLFile"`
	WebhookURLEnv  string `yaml:"webhookURLEnv"`
}

type pagerDutySpec struct {
	RoutingKeyFile string `yaml:"routingKeyFile"`
	RoutingKeyEnv  string `yaml:"routingKeyEnv"`
	URL            string `yaml:"url"`
}

type emailSpec struct {
	SMTP         string   `yaml:"smtp"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"passwordFile"`
	PasswordEnv  string   `yaml:"passwordEnv"`
}

type webhookSpec struct {
	URL        string `yaml:"url"`
	SecretFile string `yaml:"secretFile"`
	SecretEnv  string `yaml:"secretEnv"`
}

// ParseDuration parses a Prometheus-syntax duration.
func ParseDuration(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}
