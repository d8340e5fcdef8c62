package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DBFile is the database's file name inside the state directory.
const DBFile = "state.db"

// OpenTimeout bounds how long one operation waits for another process's
// transaction to finish. Transactions are short, so reaching it means
// something holds the database open for a long time.
const OpenTimeout = 10 * time.Second

var bucketInstances = []byte("instances")

// ErrNotFound is returned (wrapped) by Get and Update for an unknown ID.
var ErrNotFound = errors.New("instance not found")

// Store is the instance database of one state directory. It is safe for
// concurrent use by goroutines and by several processes: every operation
// opens the database, runs one transaction and closes it.
type Store struct {
	dir string
	// mu orders this process's own transactions so that they do not poll
	// bbolt's file lock against each other; other processes are kept out by
	// that lock.
	mu sync.RWMutex
}

// Open returns the store of the state directory dir, creating the directory
// and the database if needed.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("state: no state directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state: create state directory: %w", err)
	}
	s := &Store{dir: abs}
	// Create the database and its bucket now, so that readers can open it
	// read-only (a shared lock) from then on.
	if err := s.update(func(*bolt.Bucket) error { return nil }); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Path is the database file.
func (s *Store) Path() string { return filepath.Join(s.dir, DBFile) }

func (s *Store) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.Path(), 0o600, &bolt.Options{Timeout: OpenTimeout, ReadOnly: readOnly})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state: %s is held by another process for more than %s: %w", s.Path(), OpenTimeout, err)
		}
		return nil, fmt.Errorf("state: open %s: %w", s.Path(), err)
	}
	return db, nil
}

func (s *Store) update(fn func(b *bolt.Bucket) error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.open(false)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("state: close %s: %w", s.Path(), cerr)
		}
	}()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketInstances)
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		return fn(b)
	})
}

func (s *Store) view(fn func(b *bolt.Bucket) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	db, err := s.open(true)
	if errors.Is(err, fs.ErrNotExist) {
		return fn(nil) // removed behind our back: nothing recorded
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		return fn(tx.Bucket(bucketInstances))
	})
}

// Put records inst, replacing any instance with the same ID.
func (s *Store) Put(inst *Instance) error {
	if inst == nil || inst.ID == "" {
		return errors.New("state: put: instance without an ID")
	}
	data, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("state: put %s: %w", inst.ID, err)
	}
	return s.update(func(b *bolt.Bucket) error {
		return b.Put([]byte(inst.ID), data)
	})
}

// Get returns the instance with the given ID, or an error wrapping
// ErrNotFound.
func (s *Store) Get(id string) (*Instance, error) {
	var inst *Instance
	err := s.view(func(b *bolt.Bucket) error {
		var data []byte
		if b != nil {
			data = b.Get([]byte(id))
		}
		if data == nil {
			return fmt.Errorf("state: %s: %w", id, ErrNotFound)
		}
		var err error
		inst, err = decode(id, data)
		return err
	})
	return inst, err
}

// Update reads the instance with the given ID, lets fn change it and writes
// it back, all in one transaction: no other writer can come in between.
// When fn returns an error nothing is written and Update returns it.
func (s *Store) Update(id string, fn func(inst *Instance) error) error {
	return s.update(func(b *bolt.Bucket) error {
		data := b.Get([]byte(id))
		if data == nil {
			return fmt.Errorf("state: %s: %w", id, ErrNotFound)
		}
		inst, err := decode(id, data)
		if err != nil {
			return err
		}
		if err := fn(inst); err != nil {
			return err
		}
		inst.ID = id
		out, err := json.Marshal(inst)
		if err != nil {
			return fmt.Errorf("state: update %s: %w", id, err)
		}
		return b.Put([]byte(id), out)
	})
}

// Delete removes the instance with the given ID; removing an unknown ID is
// not an error.
func (s *Store) Delete(id string) error {
	return s.update(func(b *bolt.Bucket) error {
		return b.Delete([]byte(id))
	})
}

// Filter selects instances; empty fields match everything.
type Filter struct {
	Project string
	Target  string
	App     string
}

func (f Filter) match(i *Instance) bool {
	return (f.Project == "" || f.Project == i.Project) &&
		(f.Target == "" || f.Target == i.Target) &&
		(f.App == "" || f.App == i.App)
}

// List returns the instances that match f, oldest first.
func (s *Store) List(f Filter) ([]*Instance, error) {
	var out []*Instance
	err := s.view(func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			inst, err := decode(string(k), v)
			if err != nil {
				return err
			}
			if f.match(inst) {
				out = append(out, inst)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b *Instance) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func decode(id string, data []byte) (*Instance, error) {
	var inst Instance
	if err := json.Unmarshal(data, &inst); err != nil {
		return nil, fmt.Errorf("state: instance %s: %w", id, err)
	}
	return &inst, nil
}
