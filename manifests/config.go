package manifests

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// configMap is weft-config: the install values as indented JSON (no private
// key is part of Values), read by the injector and by later upgrades.
func configMap(v *Values) (*corev1.ConfigMap, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal install values: %w", err)
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(v, ConfigName, ""),
		Data:       map[string]string{ConfigValuesKey: string(b)},
	}, nil
}

// ParseConfig reads Values back from the weft-config ConfigMap's data.
func ParseConfig(data map[string]string) (*Values, error) {
	raw, ok := data[ConfigValuesKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s has no %q key", ConfigName, ConfigValuesKey)
	}
	var v Values
	if err := yaml.Unmarshal([]byte(raw), &v); err != nil {
		return nil, fmt.Errorf("parse %s %q: %w", ConfigName, ConfigValuesKey, err)
	}
	return &v, nil
}

func trustRoots(v *Values, c *Certs) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(v, TrustRootsName, "identity"),
		Data:       map[string]string{TrustRootsKey: string(c.TrustAnchorsPEM)},
	}
}

func issuerSecret(v *Values, c *Certs) *corev1.Secret {
	return tlsSecret(v, IssuerSecretName, "identity", c.IssuerCertPEM, c.IssuerKeyPEM)
}

func injectorTLS(v *Values, c *Certs) *corev1.Secret {
	s := tlsSecret(v, InjectorTLSName, "proxy-injector", c.WebhookCertPEM, c.WebhookKeyPEM)
	s.StringData["ca.crt"] = string(c.WebhookCAPEM)
	return s
}

// tlsSecret uses stringData so the PEM stays readable in the output.
func tlsSecret(v *Values, name, short string, cert, key []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(v, name, short),
		Type:       corev1.SecretTypeTLS,
		StringData: map[string]string{corev1.TLSCertKey: string(cert), corev1.TLSPrivateKeyKey: string(key)},
	}
}
