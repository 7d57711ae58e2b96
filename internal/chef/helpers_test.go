package chef

import (
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
)

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
)

// testKey is one 2048-bit key shared by the tests (generating is slow).
func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return key
}
