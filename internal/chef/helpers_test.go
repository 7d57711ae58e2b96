package chef

import (
	"github.com/opsboot/bootstrap/internal/pkgmgr"

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

// installed is a package manager that has chef installed already.
func installed() *pkgmgr.Fake {
	return &pkgmgr.Fake{ManagerName: "apt", Packages: map[string]string{"chef": "18.4.12-1"}}
}

// offered is a package manager whose repositories offer chef.
func offered() *pkgmgr.Fake {
	return &pkgmgr.Fake{ManagerName: "apt", Offers: map[string][]pkgmgr.Offer{"chef": {{Version: "18.4.12-1", From: "test"}}}}
}
