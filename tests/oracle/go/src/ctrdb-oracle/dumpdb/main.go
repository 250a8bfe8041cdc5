// dumpdb: open a bbolt file READ-ONLY with the real go.etcd.io/bbolt (Debian
// golang-github-coreos-bbolt-dev 1.3.6), run tx.Check(), and dump every bucket
// and key. Knows the containerd metadata encodings (varints, binary
// time.Time, protobuf Any) when -decode is set; everything else is shown as a
// quoted string if printable, otherwise as hex.
//
// Usage: dumpdb [-check-only] [-decode=true] [-flat] [-stable] [-layout] [-timeout 2s] meta.db
//
//	       dumpdb -lines meta.db     machine-readable dump (see below), nothing else on stdout
//	       dumpdb -check meta.db     prints "OK", or one "ERROR <msg>" line per tx.Check error
//
//		-lines   one line per item, in bbolt iteration order (depth-first, each
//		         bucket's entries in key order, a sub-bucket's lines right where
//		         its name sorts among its parent's keys):
//		           B <path> seq=<n>               a bucket (top-level ones too)
//		           K <path> <key> <value>         a key/value pair inside bucket <path>
//		         <path> = the hex-encoded bucket names from the root down, joined
//		         by "/"; <key>, <value> = lowercase hex; an empty value is "-"
//		         (bbolt forbids empty bucket names and keys). seq is the bucket's
//		         NextSequence counter in decimal. Exit 2 if tx.Check fails (the
//		         dump is still printed, errors go to stderr).
//		-check   run tx.Check() only; exit 0 and print "OK", or print one
//		         "ERROR <message>" line per error and exit 2.
//
//		-flat    one line per key: "path/to/bucket/key<TAB>value" (good for diffing)
//		-stable  replace timestamps and sequence-derived values with placeholders
//		         so dumps of two runs can be compared
//
// Exit status: 0 ok, 1 usage/open error, 2 tx.Check() reported errors.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

var (
	checkOnly = flag.Bool("check-only", false, "only run tx.Check() and print db info")
	decode    = flag.Bool("decode", true, "decode containerd metadata value encodings")
	flat      = flag.Bool("flat", false, "flat path<TAB>value output")
	stable    = flag.Bool("stable", false, "mask timestamps / sequence numbers for diffable output")
	timeout   = flag.Duration("timeout", 2*time.Second, "flock timeout (containerd holds an exclusive lock while running)")
	maxVal    = flag.Int("max-value", 200, "truncate rendered values to N bytes (0 = no limit)")
	lines     = flag.Bool("lines", false, "machine-readable hex dump: 'B <hexpath> seq=<n>' / 'K <hexpath> <hexkey> <hexvalue|->' lines in bbolt order")
	checkMode = flag.Bool("check", false, "tx.Check() only: print OK or 'ERROR <msg>' lines (exit 2)")
	layout    = flag.Bool("layout", false, "print the bucket SCHEMA: variable names (namespaces, image names, digests, ids, label keys...) collapsed to <placeholders>, with counts and one example value")
)

// ---------------------------------------------------------------- -layout

type lnode struct {
	name     string
	bucket   bool
	count    int
	example  string
	seen     map[string]bool // distinct real names (for placeholders)
	children []*lnode
	index    map[string]*lnode
}

func (n *lnode) child(name string, bucket bool) *lnode {
	key := name
	if !bucket {
		key = "=" + name
	}
	if n.index == nil {
		n.index = map[string]*lnode{}
	}
	c, ok := n.index[key]
	if !ok {
		c = &lnode{name: name, bucket: bucket, seen: map[string]bool{}}
		n.index[key] = c
		n.children = append(n.children, c)
	}
	return c
}

// placeholder decides whether a bucket/key name under norm path p is a variable.
func placeholder(p []string, name string) string {
	if len(p) == 0 {
		return name
	}
	last := p[len(p)-1]
	prev := ""
	if len(p) >= 2 {
		prev = p[len(p)-2]
	}
	switch {
	case len(p) == 1 && last == "v1" && name != "version":
		return "<namespace>"
	case last == "images" && prev == "<namespace>":
		return "<image-name>"
	case last == "blob":
		return "<digest>"
	case last == "ingests":
		return "<ingest-ref>"
	case last == "containers" && prev == "<namespace>":
		return "<container-id>"
	case last == "leases" && prev == "<namespace>":
		return "<lease-id>"
	case last == "snapshots":
		return "<snapshotter>"
	case last == "<snapshotter>" && prev == "snapshots":
		return "<snapshot-key>"
	case last == "content" && prev == "<lease-id>":
		return "<digest>"
	case last == "labels":
		return "<label-key>"
	case last == "annotations":
		return "<annotation-key>"
	case last == "extensions":
		return "<extension-name>"
	case last == "children":
		return "<child-snapshot-key>"
	}
	return name
}

func buildLayout(b *bolt.Bucket, n *lnode, norm, real []string) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		name := placeholder(norm, string(k))
		if v == nil && b.Bucket(k) != nil {
			cn := n.child(name, true)
			cn.count++
			cn.seen[string(k)] = true
			buildLayout(b.Bucket(k), cn, append(append([]string{}, norm...), name), append(append([]string{}, real...), string(k)))
			continue
		}
		cn := n.child(name, false)
		cn.count++
		cn.seen[string(k)] = true
		if cn.example == "" {
			cn.example = render(real, string(k), v)
		}
	}
}

func printLayout(n *lnode, depth int) {
	sort.SliceStable(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
	for _, c := range n.children {
		ind := strings.Repeat("  ", depth)
		distinct := ""
		if strings.HasPrefix(c.name, "<") && (c.name == "<namespace>" || c.name == "<snapshotter>") {
			var names []string
			for s := range c.seen {
				names = append(names, s)
			}
			sort.Strings(names)
			distinct = " {" + strings.Join(names, ", ") + "}"
		}
		if c.bucket {
			fmt.Printf("%s%s/  (x%d)%s\n", ind, c.name, c.count, distinct)
			printLayout(c, depth+1)
		} else {
			ex := c.example
			if len(ex) > 90 {
				ex = ex[:90] + "..."
			}
			fmt.Printf("%s%s  (x%d)  e.g. %s\n", ind, c.name, c.count, ex)
		}
	}
}

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dumpdb [flags] meta.db")
		flag.PrintDefaults()
		os.Exit(1)
	}
	path := flag.Arg(0)
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: *timeout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "open %s: %v (is containerd still running on it? it holds an exclusive flock)\n", path, err)
		os.Exit(1)
	}
	defer db.Close()

	if *lines || *checkMode {
		os.Exit(machine(db))
	}

	nerr := 0
	err = db.View(func(tx *bolt.Tx) error {
		st, _ := os.Stat(path)
		fmt.Printf("# file=%s size=%d pagesize=%d txid=%d tx.Size=%d\n", path, st.Size(), db.Info().PageSize, tx.ID(), tx.Size())
		for e := range tx.Check() {
			nerr++
			fmt.Printf("# CHECK ERROR: %v\n", e)
		}
		if nerr == 0 {
			fmt.Println("# tx.Check(): OK (0 errors)")
		}
		if *checkOnly {
			return nil
		}
		if *layout {
			root := &lnode{}
			_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				cn := root.child(string(name), true)
				cn.count++
				buildLayout(b, cn, []string{string(name)}, []string{string(name)})
				return nil
			})
			printLayout(root, 0)
			return nil
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			walk(b, []string{string(name)}, 0)
			return nil
		})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "view:", err)
		os.Exit(1)
	}
	if nerr > 0 {
		os.Exit(2)
	}
}

func walk(b *bolt.Bucket, path []string, depth int) {
	ind := strings.Repeat("  ", depth)
	if !*flat {
		nb, nk := 0, 0
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil && b.Bucket(k) != nil {
				nb++
			} else {
				nk++
			}
		}
		seq := ""
		if b.Sequence() != 0 {
			seq = " seq=" + strconv.FormatUint(b.Sequence(), 10)
			if *stable {
				seq = " seq=<seq>"
			}
		}
		fmt.Printf("%s[%s] (buckets=%d keys=%d%s)\n", ind, printable([]byte(path[len(path)-1])), nb, nk, seq)
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				walk(sub, append(append([]string{}, path...), string(k)), depth+1)
				continue
			}
		}
		val := render(path, string(k), v)
		if *flat {
			fmt.Printf("%s/%s\t%s\n", strings.Join(path, "/"), string(k), val)
		} else {
			fmt.Printf("%s  %s = %s\n", ind, printable(k), val)
		}
	}
}

func render(path []string, key string, v []byte) string {
	if v == nil {
		return "<nil>"
	}
	if len(v) == 0 {
		return `""`
	}
	if *decode {
		parent := ""
		if len(path) > 0 {
			parent = path[len(path)-1]
		}
		switch {
		case key == "createdat" || key == "updatedat" || key == "expireat":
			var t time.Time
			if err := t.UnmarshalBinary(v); err == nil {
				if *stable {
					return "<time>"
				}
				return "time:" + t.UTC().Format(time.RFC3339Nano)
			}
		case key == "version" && len(path) == 1, key == "size" && parent != "labels":
			if i, n := binary.Varint(v); n == len(v) {
				return "varint:" + strconv.FormatInt(i, 10)
			}
		case key == "spec" || key == "options" || parent == "extensions":
			if tu, val, ok := anyProto(v); ok {
				return fmt.Sprintf("any{type_url=%q, value=%d bytes}", tu, len(val))
			}
		case key == "ref" && len(path) >= 2 && path[len(path)-2] == "ingests":
			if *stable {
				return "<ingest-ref>"
			}
		}
	}
	return limit(printable(v))
}

// anyProto decodes google.protobuf.Any {string type_url = 1; bytes value = 2;}
func anyProto(b []byte) (string, []byte, bool) {
	var tu string
	var val []byte
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return "", nil, false
		}
		b = b[n:]
		if tag&7 != 2 {
			return "", nil, false
		}
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return "", nil, false
		}
		data := b[n : n+int(l)]
		b = b[n+int(l):]
		switch tag >> 3 {
		case 1:
			tu = string(data)
		case 2:
			val = data
		default:
			return "", nil, false
		}
	}
	return tu, val, tu != ""
}

func printable(b []byte) string {
	if utf8.Valid(b) {
		ok := true
		for _, r := range string(b) {
			if r < 0x20 && r != '\t' || r == 0x7f {
				ok = false
				break
			}
		}
		if ok {
			return strconv.Quote(string(b))
		}
	}
	return "hex:" + hex.EncodeToString(b)
}

func limit(s string) string {
	if *maxVal > 0 && len(s) > *maxVal {
		return s[:*maxVal] + fmt.Sprintf("...(%d chars)", len(s))
	}
	return s
}

// ---------------------------------------------------------------- -lines / -check

// machine implements -check and -lines; returns the exit status.
func machine(db *bolt.DB) int {
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	defer w.Flush()
	nerr := 0
	err := db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			nerr++
			if *checkMode {
				fmt.Fprintf(w, "ERROR %s\n", strings.ReplaceAll(e.Error(), "\n", " "))
			} else {
				fmt.Fprintf(os.Stderr, "dumpdb: tx.Check: %v\n", e)
			}
		}
		if *checkMode {
			if nerr == 0 {
				fmt.Fprintln(w, "OK")
			}
			return nil
		}
		c := tx.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			b := tx.Bucket(k)
			if b == nil {
				return fmt.Errorf("root entry %x is not a bucket", k)
			}
			walkLines(w, b, hex.EncodeToString(k))
		}
		return nil
	})
	if err != nil {
		w.Flush()
		fmt.Fprintln(os.Stderr, "dumpdb: view:", err)
		return 1
	}
	if nerr > 0 {
		return 2
	}
	return 0
}

func walkLines(w *bufio.Writer, b *bolt.Bucket, path string) {
	fmt.Fprintf(w, "B %s seq=%d\n", path, b.Sequence())
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				walkLines(w, sub, path+"/"+hex.EncodeToString(k))
				continue
			}
		}
		val := hex.EncodeToString(v)
		if val == "" {
			val = "-"
		}
		fmt.Fprintf(w, "K %s %s %s\n", path, hex.EncodeToString(k), val)
	}
}
