package chef

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
)

// ClientKeyBits is the node key's size, as Chef's own registration makes it.
const ClientKeyBits = 2048

// Node is what registration sets on the node object.
type Node struct {
	Name        string
	Environment string
	RunList     []string
	PolicyName  string
	PolicyGroup string
}

// TakenError says a node or client name is already registered, and what to
// delete on the server.
type TakenError struct {
	What, Name, Server string
}

func (e *TakenError) Error() string {
	return fmt.Sprintf("chef: the %s name %q is already registered on %s: an earlier instance with that name, or a name reused; "+
		"if that machine is gone, delete both on the server and run again: knife node delete %s && knife client delete %s",
		e.What, e.Name, e.Server, e.Name, e.Name)
}

// GenerateClientKey makes the node's own key (Chef's local_key_generation).
func GenerateClientKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, ClientKeyBits)
}

// EncodeKey is the PEM a client.pem holds (PKCS#1, as Chef writes it).
func EncodeKey(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// CreateClient creates the API client name with key's public half, signed
// as the validator.
func (s *Server) CreateClient(ctx context.Context, validator Signer, name string, key *rsa.PrivateKey) error {
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	body := map[string]any{
		"name": name, "clientname": name, "admin": false, "validator": false,
		"public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}
	err = s.Do(ctx, validator, http.MethodPost, "/clients", body, nil)
	if StatusOf(err) == http.StatusConflict {
		return &TakenError{What: "client", Name: name, Server: s.URL.String()}
	}
	if StatusOf(err) == http.StatusUnauthorized || StatusOf(err) == http.StatusForbidden {
		return fmt.Errorf("chef: the server refused the validator %q (check validation_name, that the key is that client's, "+
			"and this machine's clock: Chef servers allow 15 minutes of skew): %w", validator.UserID, err)
	}
	return err
}

// SaveNode creates the node as the node's own client. A node that exists
// is updated only when resuming (our client made it before a crash);
// otherwise it belongs to someone else and is reported.
func (s *Server) SaveNode(ctx context.Context, client Signer, n Node, resuming bool) error {
	runList := n.RunList
	if runList == nil {
		runList = []string{}
	}
	body := map[string]any{
		"name": n.Name, "chef_type": "node", "json_class": "Chef::Node",
		"chef_environment": n.Environment, "run_list": runList,
		"normal": map[string]any{}, "default": map[string]any{}, "override": map[string]any{}, "automatic": map[string]any{},
	}
	if n.PolicyName != "" {
		body["policy_name"], body["policy_group"] = n.PolicyName, n.PolicyGroup
	}
	err := s.Do(ctx, client, http.MethodPost, "/nodes", body, nil)
	if StatusOf(err) == http.StatusConflict {
		if !resuming {
			return &TakenError{What: "node", Name: n.Name, Server: s.URL.String()}
		}
		err = s.Do(ctx, client, http.MethodPut, "/nodes/"+n.Name, body, nil)
	}
	return err
}
