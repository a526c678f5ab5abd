package session

import (
	"reflect"
	"time"
	"unsafe"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
)

// heapBytes estimates the heap that the values vs hold beyond themselves:
// strings, slices' arrays, maps, what pointers and interfaces point to,
// each rounded up as the allocator does, so that a cache's memory budget
// counts what its entries really keep (TestDecodeCacheBudget compares it
// with the heap measured). Strings and arrays shared between values are
// counted once (by the address of their first byte: a slice of part of
// another's array counts again, so the estimate errs high, never low). A
// time.Time's location is shared by every time and not counted.
func heapBytes(vs ...any) int {
	seen := map[uintptr]bool{}
	n := 0
	for _, v := range vs {
		n += walkHeap(reflect.ValueOf(v), seen)
	}
	return n
}

var timeType = reflect.TypeFor[time.Time]()

func walkHeap(v reflect.Value, seen map[uintptr]bool) int {
	switch v.Kind() {
	case reflect.String:
		if v.Len() == 0 || once(seen, uintptr(unsafe.Pointer(unsafe.StringData(v.String())))) {
			return 0
		}
		return allocSize(v.Len())
	case reflect.Slice:
		if v.IsNil() {
			return 0
		}
		n := 0
		if !once(seen, v.Pointer()) {
			n = allocSize(v.Cap() * int(v.Type().Elem().Size()))
		}
		for i := range v.Len() {
			n += walkHeap(v.Index(i), seen)
		}
		return n
	case reflect.Array:
		n := 0
		for i := range v.Len() {
			n += walkHeap(v.Index(i), seen)
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return 0
		}
		t := v.Type()
		// A map's table: slots for twice its entries (load factor,
		// growth by doubling), a control byte each, and its header.
		n := allocSize(48) + allocSize(2*v.Len()*(int(t.Key().Size()+t.Elem().Size())+1))
		for it := v.MapRange(); it.Next(); {
			n += walkHeap(it.Key(), seen) + walkHeap(it.Value(), seen)
		}
		return n
	case reflect.Pointer:
		if v.IsNil() || once(seen, v.Pointer()) {
			return 0
		}
		return allocSize(int(v.Type().Elem().Size())) + walkHeap(v.Elem(), seen)
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		e := v.Elem()
		if e.Kind() == reflect.Pointer {
			return walkHeap(e, seen)
		}
		return allocSize(int(e.Type().Size())) + walkHeap(e, seen) // boxed
	case reflect.Struct:
		if v.Type() == timeType {
			return 0
		}
		n := 0
		for i := range v.NumField() {
			n += walkHeap(v.Field(i), seen)
		}
		return n
	}
	return 0
}

func allocSize(n int) int { return store.AllocSize(n) }

// once reports whether p was seen before, and notes it.
func once(seen map[uintptr]bool, p uintptr) bool {
	if seen[p] {
		return true
	}
	seen[p] = true
	return false
}
