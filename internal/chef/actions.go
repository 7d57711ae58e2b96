package chef

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"

	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// Apply registers: a new client with a key made here, client.pem written
// (0600) as soon as the server has the client, then the node.
func (r *register) Apply(ctx context.Context, env *plan.Env) error {
	u, err := url.Parse(r.server)
	if err != nil {
		return err
	}
	srv := &Server{URL: u, HTTP: r.http, Deadline: r.deadline}
	start := time.Now()
	defer func() {
		env.Log.Info("chef server requests", "server", r.server, "requests", srv.Requests.Load(), "duration", time.Since(start).Round(time.Millisecond).String())
	}()
	if r.resume {
		data, err := env.Root.ReadFile(r.clientKey, config.MaxChefKeyBytes)
		if err != nil {
			return fmt.Errorf("chef: read the existing client key: %w", err)
		}
		env.Redactor.Add(string(data))
		k, err := config.ParseRSAKey(data)
		if err != nil {
			return fmt.Errorf("chef: %s: %v; remove it to register again", r.clientKey, err)
		}
		return r.saveNode(ctx, env, srv, Signer{UserID: r.node.Name, Key: k}, true)
	}
	if r.validatorKey == nil {
		return errors.New("chef: no validator key in memory")
	}
	key, err := GenerateClientKey()
	if err != nil {
		return err
	}
	pemKey := EncodeKey(key)
	env.Redactor.Add(string(pemKey))
	if err := srv.CreateClient(ctx, Signer{UserID: r.validator, Key: r.validatorKey}, r.node.Name, key); err != nil {
		return err
	}
	if _, _, err := env.Root.WriteFile(r.clientKey, bytes.NewReader(pemKey), rootfs.FileSpec{Mode: 0o600, Owner: "root", Group: "root"}); err != nil {
		return fmt.Errorf("chef: client %s was created on %s but its key could not be written (delete the client there: knife client delete %s): %w",
			r.node.Name, r.server, r.node.Name, err)
	}
	env.Log.Info("chef client created", "client", r.node.Name, "server", r.server, "key", r.clientKey)
	return r.saveNode(ctx, env, srv, Signer{UserID: r.node.Name, Key: key}, false)
}

func (r *register) saveNode(ctx context.Context, env *plan.Env, srv *Server, who Signer, resuming bool) error {
	err := srv.SaveNode(ctx, who, r.node, resuming)
	var taken *TakenError
	if errors.As(err, &taken) {
		// Our new client must not adopt someone else's node on a re-run.
		if _, rerr := env.Root.Remove(r.clientKey); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			env.Log.Warn("could not remove the client key", "path", r.clientKey, "error", rerr.Error())
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("chef: save node %s: %w", r.node.Name, err)
	}
	env.Log.Info("chef node saved", "node", r.node.Name, "environment", r.node.Environment)
	return nil
}
