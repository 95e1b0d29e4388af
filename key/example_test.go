package key_test

import (
	"encoding/json"
	"fmt"
	"log"

	"github.com/openderp/openderp/key"
)

func ExampleNewNode() {
	priv := key.NewNode()
	pub := priv.Public()
	// A fresh key is random; its text forms have a fixed shape.
	fmt.Println(len(priv.String()), len(pub.String()), len(pub.UntypedHexString()))
	// Output: 72 72 64
}

func ExampleParseNodePublicUntyped() {
	// The untyped form is what the Derp-Public-Key header carries.
	pub, err := key.ParseNodePublicUntyped("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pub)
	fmt.Println(pub.ShortString())
	// Output:
	// nodekey:8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a
	// [hSDwC]
}

func ExampleNodePrivate_UnmarshalText() {
	// The derper configuration file holds the private key as JSON.
	var cfg struct{ PrivateKey key.NodePrivate }
	err := json.Unmarshal([]byte(`{"PrivateKey":"privkey:77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"}`), &cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.PrivateKey.Public())

	err = json.Unmarshal([]byte(`{"PrivateKey":"nodekey:77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"}`), &cfg)
	fmt.Println(err)
	// Output:
	// nodekey:8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a
	// key: parsing "privkey:" key: missing prefix "privkey:"
}

func ExampleNodePrivate_SealTo() {
	client, server := key.NewNode(), key.NewNode()

	sealed, err := client.SealTo(server.Public(), []byte(`{"version":2}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(sealed) - key.BoxOverhead)

	clear, ok := server.OpenFrom(client.Public(), sealed)
	fmt.Println(string(clear), ok)

	// Any change to the box makes it fail to open.
	sealed[len(sealed)-1] ^= 1
	_, ok = server.OpenFrom(client.Public(), sealed)
	fmt.Println(ok)
	// Output:
	// 13
	// {"version":2} true
	// false
}

func ExampleDiscoPublic_ShortString() {
	var raw [32]byte
	copy(raw[:], []byte{0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3})
	fmt.Println(key.DiscoPublicFromRaw32(raw).ShortString())
	fmt.Println(key.DiscoPublic{}.ShortString() == "")
	// Output:
	// d:de9edb7d7b7dc1b4
	// true
}
