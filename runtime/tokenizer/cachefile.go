package tokenizer

import (
	"encoding/hex"
	"os"
	"path/filepath"
)

// CacheDir is the directory of the tokenizer cache (see Load):
// $MINERVA_CACHE_DIR if set, else minerva/tokenizers in the user's cache
// directory (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux,
// ~/Library/Caches on macOS). It is "" when the cache is off:
// MINERVA_CACHE_DIR=off, or no cache directory is known.
func CacheDir() string {
	if d := os.Getenv("MINERVA_CACHE_DIR"); d != "" {
		if d == "off" {
			return ""
		}
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "minerva", "tokenizers")
}

// cachePath is the cache file of the tokenizer.json whose SHA-256 is key.
func cachePath(dir string, key [32]byte) string {
	return filepath.Join(dir, hex.EncodeToString(key[:])+".bin")
}

// loadWithCache returns the tokenizer of the tokenizer.json data: from
// its cache file in dir if there is a valid one, else parsed, after which
// the cache file is written. dir "" is no cache.
func loadWithCache(data []byte, dir string) (*Tokenizer, error) {
	if dir == "" || !littleEndian {
		return parse(data, nil)
	}
	key := cacheKey(data)
	path := cachePath(dir, key)
	if t, err := readCache(path, key, maxCacheSize(len(data))); err == nil {
		return t, nil
	}
	var kept parsedTables
	t, err := parse(data, &kept)
	if err != nil {
		return nil, err
	}
	writeCache(path, key, t, &kept) // best effort: the cache only saves time
	return t, nil
}

// maxCacheSize bounds the cache file of a tokenizer.json of n bytes, so
// that a stray large file under its name is not mapped whole: the tables
// take at most about 40 bytes a vocabulary entry and 28 a merge, each at
// least 6 bytes of JSON, plus 5 bytes an id up to the highest (ids may
// be sparse: at most maxID).
func maxCacheSize(n int) int64 {
	return 16*int64(n) + 5*maxID + 1<<20
}

// readCache loads a cache file of at most maxSize bytes. On success the
// file stays mapped: the Tokenizer's tables are views of it.
func readCache(path string, key [32]byte, maxSize int64) (*Tokenizer, error) {
	data, unmap, err := mapCacheFile(path, maxSize)
	if err != nil {
		return nil, err
	}
	t, err := decodeCache(data, key)
	if err != nil {
		unmap()
		return nil, err
	}
	return t, nil
}

// writeCache writes the cache file atomically: into a temporary file in
// the same directory, renamed over path, so that a reader (another
// process, perhaps) sees the old file or the whole new one. A crash can
// leave a *.tmp file behind; a torn file under path is caught by its
// length and checksum.
func writeCache(path string, key [32]byte, t *Tokenizer, kept *parsedTables) error {
	file, err := newCacheFile(key, t, kept)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = file.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
