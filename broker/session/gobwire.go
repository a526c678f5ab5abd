package session

import (
	"encoding/binary"
	"math/bits"
	"reflect"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// A session as scs's gob codec stores it is gob's encoding of
// struct{Deadline time.Time; Values map[string]interface{}}, decoded by
// encoding/gob on every replica, of this version and of earlier ones. gob's
// own encoder writes into it the type descriptors of every value: the
// names of the map type ("map[string]interface {}"), of time.Time and of
// the identity's struct, and every field name of providers.Identity, also
// those of the fields the session leaves empty (GroupsIncomplete, ACR,
// ...). gob's decoder needs none of those names but the fields': it
// matches struct fields by name, compares no type names, and takes a
// missing field as its zero value. encodeCompact therefore writes the same
// stream without them: type descriptors without names, the identity's with
// only the fields it sets. Any gob decoder (a replica of an earlier
// version, scs.GobCodec) reads the same values from it as from gob's own
// encoding (TestCompactGobDecodesAsGob); a demo login's session is about
// 80 bytes smaller (TestRedisSessionSize: 955 bytes instead of 1,037).
//
// The wire format is encoding/gob's, as its package documentation
// specifies it (type definitions as messages with a negative id; a struct
// as field deltas and values ending in 0; an interface value as its
// registered name, its type id, a byte count and the value).

// identityGobName is the name providers.Identity is registered under
// (gob.Register in package providers): the name every stored session gives
// it (TestSessionEncodingGolden pins it).
const identityGobName = "github.com/oidc-broker/oidc-broker/providers.Identity"

// gob's predefined type ids, and the ones this encoding defines (any id
// from 64 on: each stream defines its own).
const (
	gobBool      = 1
	gobBytes     = 5
	gobString    = 6
	gobInterface = 8
)

const (
	idEnvelope = 64 + iota
	idTime
	idValues
	idStrings
	idIdentity
)

// encodeCompact is the gob encoding of a session (deadline, values) without
// the type names gob writes; ok is false for values it does not write
// (other than strings, bools, byte slices and one identity: the caller
// then uses gob's own encoder).
func encodeCompact(deadline time.Time, values map[string]any) (b []byte, ok bool) {
	if len(values) == 0 || deadline.IsZero() {
		return nil, false
	}
	var id *identityWire
	for _, v := range values {
		switch v := v.(type) {
		case string, bool, []byte:
		case providers.Identity:
			if id != nil { // a second one: its value would be the first's
				return nil, false
			}
			if id, ok = identityFields(v); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	dl, err := deadline.MarshalBinary()
	if err != nil {
		return nil, false
	}

	b = make([]byte, 0, 1024)
	// The type definitions, all first (a decoder keeps them for the stream).
	b = typeMessage(b, idEnvelope, wireStruct(idEnvelope, []wireField{{"Deadline", idTime}, {"Values", idValues}}))
	b = typeMessage(b, idTime, wireGobEncoder(idTime))
	b = typeMessage(b, idValues, wireMap(idValues, gobString, gobInterface))
	if id != nil {
		if id.strings {
			b = typeMessage(b, idStrings, wireSlice(idStrings, gobString))
		}
		b = typeMessage(b, idIdentity, wireStruct(idIdentity, id.fields))
	}

	// The value: the envelope struct.
	v := gobInt(nil, idEnvelope)
	v = gobUint(v, 1) // Deadline
	v = gobBytesValue(v, dl)
	v = gobUint(v, 1) // Values
	v = gobUint(v, uint64(len(values)))
	for k, x := range values {
		v = gobBytesValue(v, []byte(k))
		switch x := x.(type) {
		case string:
			v = interfaceValue(v, "string", gobString, gobBytesValue([]byte{0}, []byte(x)))
		case bool:
			v = interfaceValue(v, "bool", gobBool, gobUint([]byte{0}, boolUint(x)))
		case []byte:
			v = interfaceValue(v, "[]uint8", gobBytes, gobBytesValue([]byte{0}, x))
		case providers.Identity:
			v = interfaceValue(v, identityGobName, idIdentity, append(id.value, 0))
		}
	}
	v = append(v, 0) // end of the envelope
	return message(b, v), true
}

// identityWire is an identity's struct definition (the fields it sets)
// and its value (without the closing 0).
type identityWire struct {
	fields  []wireField
	value   []byte
	strings bool // a []string field: its type is defined
}

var identityType = reflect.TypeFor[providers.Identity]()

// identityFields writes the fields id sets; ok is false when the identity
// has a field of a type this encoding does not write (then gob's own
// encoder does).
func identityFields(id providers.Identity) (*identityWire, bool) {
	w := &identityWire{}
	rv := reflect.ValueOf(id)
	last := -1
	for i := range identityType.NumField() {
		f := identityType.Field(i)
		if !f.IsExported() {
			return nil, false
		}
		fv := rv.Field(i)
		var typ int64
		var val []byte
		switch x := fv.Interface().(type) {
		case string:
			if x != "" {
				typ, val = gobString, gobBytesValue(nil, []byte(x))
			}
		case bool:
			if x {
				typ, val = gobBool, gobUint(nil, 1)
			}
		case []string:
			if len(x) > 0 {
				typ, val = idStrings, gobUint(nil, uint64(len(x)))
				for _, s := range x {
					val = gobBytesValue(val, []byte(s))
				}
				w.strings = true
			}
		case time.Time:
			if x != (time.Time{}) { // gob's own test: every field zero
				t, err := x.MarshalBinary()
				if err != nil {
					return nil, false
				}
				typ, val = idTime, gobBytesValue(nil, t)
			}
		default:
			return nil, false
		}
		if val == nil {
			continue // a zero field: neither defined nor sent
		}
		w.fields = append(w.fields, wireField{f.Name, typ})
		w.value = gobUint(w.value, uint64(len(w.fields)-1-last))
		w.value = append(w.value, val...)
		last = len(w.fields) - 1
	}
	return w, true
}

type wireField struct {
	name string
	id   int64
}

// typeMessage appends the definition of type id (def: its wireType).
func typeMessage(b []byte, id int64, def []byte) []byte {
	return message(b, append(gobInt(nil, -id), def...))
}

// message appends m with its byte count.
func message(b, m []byte) []byte { return append(gobUint(b, uint64(len(m))), m...) }

// wireStruct is wireType{StructT: &structType{CommonType{Id: id}, Field: fields}}.
func wireStruct(id int64, fields []wireField) []byte {
	b := commonType(gobUint(nil, 3), id) // StructT
	b = gobUint(b, 1)                    // Field
	b = gobUint(b, uint64(len(fields)))
	for _, f := range fields {
		b = gobBytesValue(gobUint(b, 1), []byte(f.name))
		b = append(gobInt(gobUint(b, 1), f.id), 0)
	}
	return append(b, 0, 0) // end of structType, of wireType
}

// wireGobEncoder is wireType{GobEncoderT: &gobEncoderType{CommonType{Id: id}}}.
func wireGobEncoder(id int64) []byte {
	return append(commonType(gobUint(nil, 5), id), 0, 0)
}

// wireMap is wireType{MapT: &mapType{CommonType{Id: id}, Key: key, Elem: elem}}.
func wireMap(id, key, elem int64) []byte {
	b := commonType(gobUint(nil, 4), id)
	b = gobInt(gobUint(b, 1), key)
	b = gobInt(gobUint(b, 1), elem)
	return append(b, 0, 0)
}

// wireSlice is wireType{SliceT: &sliceType{CommonType{Id: id}, Elem: elem}}.
func wireSlice(id, elem int64) []byte {
	b := commonType(gobUint(nil, 2), id)
	b = gobInt(gobUint(b, 1), elem)
	return append(b, 0, 0)
}

// commonType appends a CommonType field (delta 1) holding id and no
// name: the Id field (delta 2), the id, the end.
func commonType(b []byte, id int64) []byte {
	return append(gobInt(gobUint(gobUint(b, 1), 2), id), 0)
}

// interfaceValue appends an interface value: the concrete type's name,
// its id, and its value with its byte count.
func interfaceValue(b []byte, name string, id int64, value []byte) []byte {
	b = gobBytesValue(b, []byte(name))
	b = gobInt(b, id)
	return message(b, value)
}

func gobBytesValue(b, s []byte) []byte { return append(gobUint(b, uint64(len(s))), s...) }

// gobUint appends x as gob writes an unsigned integer: below 128 one
// byte; else the negated byte count, then the bytes, big-endian.
func gobUint(b []byte, x uint64) []byte {
	if x < 128 {
		return append(b, byte(x))
	}
	n := (bits.Len64(x) + 7) / 8
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], x)
	return append(append(b, byte(-n)), buf[8-n:]...)
}

// gobInt appends x as gob writes a signed integer: the sign in the low
// bit, complemented when negative.
func gobInt(b []byte, x int64) []byte {
	if x < 0 {
		return gobUint(b, uint64(^x)<<1|1)
	}
	return gobUint(b, uint64(x)<<1)
}

func boolUint(x bool) uint64 {
	if x {
		return 1
	}
	return 0
}
