// ctrmeta: use containerd's OWN metadata package
// (github.com/containerd/containerd/metadata, Debian 1.6.20~ds1) as an oracle
// that reads a meta.db and lists, for every namespace: namespace labels,
// images, content blobs, ingests, containers, leases (+resources) and
// snapshots.
//
// The bolt file is opened read-only (shared flock), so this never modifies
// the input and fails fast while containerd is running on it.
//
// Usage:
//
//	ctrmeta [-json] [-root DIR] meta.db
//	ctrmeta -backend-snapshots -root DIR x       # the snapshotters' own records (not meta.db)
//	ctrmeta -objects meta.db                    # "<ns> <kind> <id>" lines, for diffing
//	ctrmeta -gc [-json] [-root DIR] meta.db     # dry-run GC on a temp copy
//	ctrmeta -manifest meta.db                   # JSON list of every image record (for fixtures)
//
// The metadata package is containerd 1.6.20's (Debian). Things newer releases
// store that 1.6 does not model are read straight from bolt and reported under
// "raw_extras" (never silently dropped): 1.7's top-level <ns>/sandboxes
// buckets, 2.x's v1/<ns>/sandboxes, leases/<id>/images (2.x), the containers'
// sandboxid key (1.7+), and v1/version.
//
//	-root DIR   a containerd root (the dir containing io.containerd.content.v1.content);
//	            enables content-backed checks: image platforms, size,
//	            images.Check (available/missing blobs) and ingest status.
//	-gc         copy meta.db to a temp file, run metadata.DB.GarbageCollect
//	            (real containerd GC code) against it with a backend content store
//	            and snapshotters whose Delete/Remove are *recorded, not executed*,
//	            and print what would be removed (metadata-level diff + backend calls).
package main

import (
	"context"
	_ "crypto/sha256" // go-digest needs the hash registered, else digest.Parse fails and Walk silently skips every blob
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/content/local"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/metadata"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/platforms"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/storage"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"flag"
)

var (
	asJSON = flag.Bool("json", false, "JSON output")
	root   = flag.String("root", "", "containerd root dir (for content-backed checks)")
	doGC   = flag.Bool("gc", false, "dry-run containerd GC on a temp copy and report removals")
	bsnaps = flag.Bool("backend-snapshots", false, "with -root: list the snapshotters' own (backend) snapshot keys, sorted")
	objs   = flag.Bool("objects", false, "print one line per object (\"<ns> <kind> <id>\"), sorted; for diffing")
	objsX  = flag.Bool("objects-ext", false, "like -objects plus \"<ns> lease-resource <lease> <type>:<id>\" (1.6 ListResources) and \"<ns> sandbox <id>\" / lease image lines (raw bolt, marked [raw])")
	manif  = flag.Bool("manifest", false, "print a JSON list of every image record (namespace, name, target, labels)")
)

// ---------------------------------------------------------------- stubs

// stubSnapshotter is a backend snapshotter with no state: Stat answers from
// the name alone (metadata.snapshotter merges the bolt-side info on top),
// Remove is recorded, Walk yields nothing.
type stubSnapshotter struct {
	name    string
	removed *[]string
}

func (s *stubSnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	return snapshots.Info{Name: key, Kind: snapshots.KindUnknown}, nil
}
func (s *stubSnapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	return info, nil
}
func (s *stubSnapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	return snapshots.Usage{}, nil
}
func (s *stubSnapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	return nil, errdefs.ErrNotImplemented
}
func (s *stubSnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return nil, errdefs.ErrNotImplemented
}
func (s *stubSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return nil, errdefs.ErrNotImplemented
}
func (s *stubSnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	return errdefs.ErrNotImplemented
}
func (s *stubSnapshotter) Remove(ctx context.Context, key string) error {
	if s.removed != nil {
		*s.removed = append(*s.removed, s.name+"/"+key)
	}
	return nil
}
func (s *stubSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	return nil
}
func (s *stubSnapshotter) Close() error { return nil }

// msSnapshotter answers Stat/Walk from a temp COPY of a real snapshotter's
// own bolt store (<root>/io.containerd.snapshotter.v1.<name>/metadata.db, read
// through containerd's snapshots/storage package); Remove is recorded only.
type msSnapshotter struct {
	stubSnapshotter
	ms *storage.MetaStore
}

func (s *msSnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return snapshots.Info{}, err
	}
	defer t.Rollback()
	_, info, _, err := storage.GetInfo(ctx, key)
	return info, err
}

func (s *msSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, fs ...string) error {
	ctx, t, err := s.ms.TransactionContext(ctx, false)
	if err != nil {
		return err
	}
	defer t.Rollback()
	return storage.WalkInfo(ctx, fn, fs...)
}

// snapshotterFor returns a backend for snapshotter name: the real storage
// (copied) when -root has it, else the stateless stub.
func snapshotterFor(name string, removed *[]string) snapshots.Snapshotter {
	stub := stubSnapshotter{name: name, removed: removed}
	if *root == "" {
		return &stub
	}
	src := filepath.Join(*root, "io.containerd.snapshotter.v1."+name, "metadata.db")
	in, err := os.Open(src)
	if err != nil {
		return &stub
	}
	defer in.Close()
	tmp, err := ioutil.TempFile("", "ctrmeta-sn-*.db")
	if err != nil {
		die("%v", err)
	}
	if _, err := io.Copy(tmp, in); err != nil {
		die("%v", err)
	}
	tmp.Close()
	tmpFiles = append(tmpFiles, tmp.Name())
	ms, err := storage.NewMetaStore(tmp.Name())
	if err != nil {
		die("open snapshotter store copy %s: %v", src, err)
	}
	return &msSnapshotter{stubSnapshotter: stub, ms: ms}
}

var tmpFiles, tmpDirs []string

// recordingStore wraps a real local content store; Delete is recorded only.
type recordingStore struct {
	content.Store
	deleted []string
	aborted []string
}

func (r *recordingStore) Delete(ctx context.Context, dgst digest.Digest) error {
	r.deleted = append(r.deleted, dgst.String())
	return nil
}

func (r *recordingStore) Abort(ctx context.Context, ref string) error {
	r.aborted = append(r.aborted, ref)
	return nil
}

// ---------------------------------------------------------------- report types

type Report struct {
	File       string       `json:"file"`
	DBVersion  string       `json:"db_version,omitempty"`
	Namespaces []*Namespace `json:"namespaces"`
	RawExtras  *RawExtras   `json:"raw_extras,omitempty"`
}

// RawExtras: records that containerd 1.6's metadata package does not model,
// read directly with bbolt.
type RawExtras struct {
	Note            string              `json:"note"`
	TopLevelBuckets []string            `json:"top_level_buckets"`
	Sandboxes       []RawSandbox        `json:"sandboxes,omitempty"`
	LeaseImages     []string            `json:"lease_images,omitempty"`
	ContainerSbIDs  map[string]string   `json:"container_sandboxid,omitempty"`
	ImagesWithExp   []string            `json:"images_with_gc_expire,omitempty"`
	UnknownNSKeys   map[string][]string `json:"unknown_namespace_buckets,omitempty"`
}

type RawSandbox struct {
	Location  string            `json:"location"` // "v1/<ns>/sandboxes" (2.x) or "<ns>/sandboxes" (1.7 top level)
	Namespace string            `json:"namespace"`
	ID        string            `json:"id"`
	Sandboxer string            `json:"sandboxer,omitempty"`
	Runtime   string            `json:"runtime,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Exts      []string          `json:"extensions,omitempty"`
	Created   *time.Time        `json:"created,omitempty"`
}

// ManifestImage: one image record, for -manifest.
type ManifestImage struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Digest      string            `json:"target_digest"`
	MediaType   string            `json:"target_media_type"`
	Size        int64             `json:"target_size"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
	ContentRec  bool              `json:"target_content_record_in_namespace"`
}

type Namespace struct {
	Name       string                `json:"name"`
	Labels     map[string]string     `json:"labels,omitempty"`
	Images     []Image               `json:"images"`
	Content    []Blob                `json:"content"`
	Ingests    []Ingest              `json:"ingests,omitempty"`
	Containers []Container           `json:"containers"`
	Leases     []Lease               `json:"leases"`
	Snapshots  map[string][]Snapshot `json:"snapshots"`
}

type Image struct {
	Name        string            `json:"name"`
	Digest      string            `json:"digest"`
	MediaType   string            `json:"media_type"`
	Size        int64             `json:"size"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
	Platforms   []string          `json:"platforms,omitempty"`
	UnpackSize  int64             `json:"content_size_host_platform,omitempty"`
	Available   *bool             `json:"available_host_platform,omitempty"`
	Missing     []string          `json:"missing_host_platform,omitempty"`
	CheckErr    string            `json:"check_error,omitempty"`
}

type Blob struct {
	Digest  string            `json:"digest"`
	Size    int64             `json:"size"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
}

type Ingest struct {
	Ref        string     `json:"ref"`
	BackendRef string     `json:"backend_ref"`
	Expected   string     `json:"expected,omitempty"`
	ExpireAt   *time.Time `json:"expireat,omitempty"`
	Status     string     `json:"status,omitempty"`
}

type Container struct {
	ID          string            `json:"id"`
	Image       string            `json:"image"`
	Runtime     string            `json:"runtime"`
	RuntimeOpts string            `json:"runtime_options_type,omitempty"`
	Snapshotter string            `json:"snapshotter"`
	SnapshotKey string            `json:"snapshot_key"`
	SpecType    string            `json:"spec_type,omitempty"`
	SpecBytes   int               `json:"spec_bytes"`
	Labels      map[string]string `json:"labels,omitempty"`
	Extensions  map[string]string `json:"extensions,omitempty"`
	Created     time.Time         `json:"created"`
}

type Lease struct {
	ID        string            `json:"id"`
	Labels    map[string]string `json:"labels,omitempty"`
	Created   time.Time         `json:"created"`
	Resources []string          `json:"resources,omitempty"`
}

type Snapshot struct {
	Key     string            `json:"key"`
	Kind    string            `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
}

// ---------------------------------------------------------------- main

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "ctrmeta: "+f+"\n", a...)
	cleanupTmp()
	os.Exit(1)
}

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ctrmeta [-json] [-root DIR] [-gc] meta.db")
		os.Exit(1)
	}
	path := flag.Arg(0)
	if *bsnaps {
		listBackendSnapshots()
		return
	}
	if *doGC {
		runGC(path)
		return
	}
	bdb, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		die("open %s read-only: %v (containerd running on it?)", path, err)
	}
	defer bdb.Close()
	cs, snNames := backends(bdb)
	ss := map[string]snapshots.Snapshotter{}
	for _, n := range snNames {
		ss[n] = snapshotterFor(n, nil)
	}
	defer cleanupTmp()
	mdb := metadata.NewDB(bdb, cs, ss)
	rep := collect(mdb, bdb, path, snNames)
	rep.RawExtras = rawExtras(bdb)
	if *manif {
		var out []ManifestImage
		for _, ns := range rep.Namespaces {
			have := map[string]bool{}
			for _, b := range ns.Content {
				have[b.Digest] = true
			}
			for _, i := range ns.Images {
				l := i.Labels
				if l == nil {
					l = map[string]string{}
				}
				out = append(out, ManifestImage{Namespace: ns.Name, Name: i.Name, Digest: i.Digest, MediaType: i.MediaType,
					Size: i.Size, Labels: l, Annotations: i.Annotations, Created: i.Created, Updated: i.Updated, ContentRec: have[i.Digest]})
			}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(out)
		return
	}
	if *objs || *objsX {
		var keys []string
		for k := range flatten(rep) {
			keys = append(keys, k)
		}
		if *objsX {
			for _, ns := range rep.Namespaces {
				for _, l := range ns.Leases {
					for _, r := range l.Resources {
						keys = append(keys, ns.Name+" lease-resource "+l.ID+" "+r)
					}
				}
			}
			for _, sb := range rep.RawExtras.Sandboxes {
				keys = append(keys, sb.Namespace+" sandbox "+sb.ID+" [raw "+sb.Location+"]")
			}
			for _, li := range rep.RawExtras.LeaseImages {
				f := strings.SplitN(li, " ", 3)
				keys = append(keys, f[0]+" lease-resource "+f[1]+" "+f[2]+" [raw]")
			}
		}
		sort.Strings(keys)
		fmt.Println(strings.Join(keys, "\n"))
		return
	}
	output(rep)
}

// backends returns the backend content store (real local store on -root, or
// an empty temp one) and the snapshotter names present in the DB.
func backends(bdb *bolt.DB) (content.Store, []string) {
	dir := ""
	if *root != "" {
		dir = filepath.Join(*root, "io.containerd.content.v1.content")
		if _, err := os.Stat(dir); err != nil {
			die("-root: %v", err)
		}
	} else {
		d, err := ioutil.TempDir("", "ctrmeta-cs")
		if err != nil {
			die("%v", err)
		}
		tmpDirs = append(tmpDirs, d) // empty stand-in content store, removed by cleanupTmp
		dir = d
	}
	cs, err := local.NewStore(dir)
	if err != nil {
		die("content store: %v", err)
	}
	names := map[string]bool{}
	_ = bdb.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket([]byte("v1"))
		if v1 == nil {
			return nil
		}
		return v1.ForEach(func(ns, v []byte) error {
			if v != nil {
				return nil
			}
			if sb := v1.Bucket(ns).Bucket([]byte("snapshots")); sb != nil {
				_ = sb.ForEach(func(k, v []byte) error {
					if v == nil {
						names[string(k)] = true
					}
					return nil
				})
			}
			return nil
		})
	})
	// always include the common ones so GC marks work for labels referencing them
	names["overlayfs"], names["native"] = true, true
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return cs, out
}

func collect(mdb *metadata.DB, bdb *bolt.DB, path string, snNames []string) *Report {
	rep := &Report{File: path}
	var nss []string
	_ = bdb.View(func(tx *bolt.Tx) error {
		if v1 := tx.Bucket([]byte("v1")); v1 != nil {
			if b := v1.Get([]byte("version")); b != nil {
				if v, n := binary.Varint(b); n == len(b) {
					rep.DBVersion = fmt.Sprint(v)
				} else {
					rep.DBVersion = fmt.Sprintf("hex:%x", b)
				}
			}
		}
		var err error
		nss, err = metadata.NewNamespaceStore(tx).List(context.Background())
		return err
	})
	host := platforms.Default()
	for _, name := range nss {
		ns := &Namespace{Name: name, Images: []Image{}, Content: []Blob{}, Containers: []Container{}, Leases: []Lease{}, Snapshots: map[string][]Snapshot{}}
		ctx := namespaces.WithNamespace(context.Background(), name)
		_ = bdb.View(func(tx *bolt.Tx) error {
			l, err := metadata.NewNamespaceStore(tx).Labels(ctx, name)
			ns.Labels = l
			return err
		})
		// images
		imgs, err := metadata.NewImageStore(mdb).List(ctx)
		if err != nil {
			die("images.List(%s): %v", name, err)
		}
		for _, im := range imgs {
			o := Image{Name: im.Name, Digest: im.Target.Digest.String(), MediaType: im.Target.MediaType,
				Size: im.Target.Size, Labels: im.Labels, Annotations: im.Target.Annotations,
				Created: im.CreatedAt, Updated: im.UpdatedAt}
			if *root != "" {
				cs := mdb.ContentStore()
				if ps, err := images.Platforms(ctx, cs, im.Target); err == nil {
					for _, p := range ps {
						o.Platforms = append(o.Platforms, platforms.Format(p))
					}
				} else {
					o.CheckErr = "platforms: " + err.Error()
				}
				avail, _, _, missing, err := images.Check(ctx, cs, im.Target, host)
				if err != nil {
					o.CheckErr = strings.TrimPrefix(o.CheckErr+"; check: "+err.Error(), "; ")
				} else {
					o.Available = &avail
					for _, m := range missing {
						o.Missing = append(o.Missing, m.Digest.String())
					}
				}
				if sz, err := im.Size(ctx, cs, host); err == nil {
					o.UnpackSize = sz
				}
			}
			ns.Images = append(ns.Images, o)
		}
		// content
		err = mdb.ContentStore().Walk(ctx, func(info content.Info) error {
			ns.Content = append(ns.Content, Blob{Digest: info.Digest.String(), Size: info.Size, Labels: info.Labels, Created: info.CreatedAt})
			return nil
		})
		if err != nil {
			die("content.Walk(%s): %v", name, err)
		}
		// ingests: read the records straight from bolt (metadata ListStatuses
		// hides ingests that have no backend writer, e.g. "shared" ingests whose
		// expected blob already exists in another namespace), then attach the
		// backend status from the real ListStatuses where it has one.
		_ = bdb.View(func(tx *bolt.Tx) error {
			b := bucket(tx, "v1", name, "content", "ingests")
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if v != nil {
					return nil
				}
				ib := b.Bucket(k)
				in := Ingest{Ref: string(k), Expected: string(ib.Get([]byte("expected"))), BackendRef: string(ib.Get([]byte("ref")))}
				if ea := ib.Get([]byte("expireat")); ea != nil {
					var t time.Time
					if err := t.UnmarshalBinary(ea); err == nil {
						in.ExpireAt = &t
					}
				}
				ns.Ingests = append(ns.Ingests, in)
				return nil
			})
		})
		if *root != "" {
			sts, err := mdb.ContentStore().ListStatuses(ctx)
			if err != nil {
				die("content.ListStatuses(%s): %v", name, err)
			}
			for _, st := range sts {
				for i := range ns.Ingests {
					if ns.Ingests[i].Ref == st.Ref {
						ns.Ingests[i].Status = fmt.Sprintf("offset=%d total=%d", st.Offset, st.Total)
					}
				}
			}
			for i := range ns.Ingests {
				if ns.Ingests[i].Status == "" {
					ns.Ingests[i].Status = "not listed by ListStatuses (no backend ingest)"
				}
			}
		}
		// containers
		ctrs, err := metadata.NewContainerStore(mdb).List(ctx)
		if err != nil {
			die("containers.List(%s): %v", name, err)
		}
		for _, c := range ctrs {
			o := Container{ID: c.ID, Image: c.Image, Runtime: c.Runtime.Name, Snapshotter: c.Snapshotter,
				SnapshotKey: c.SnapshotKey, Labels: c.Labels, Created: c.CreatedAt}
			if c.Runtime.Options != nil {
				o.RuntimeOpts = c.Runtime.Options.TypeUrl
			}
			if c.Spec != nil {
				o.SpecType, o.SpecBytes = c.Spec.TypeUrl, len(c.Spec.Value)
			}
			if len(c.Extensions) > 0 {
				o.Extensions = map[string]string{}
				for k, v := range c.Extensions {
					o.Extensions[k] = fmt.Sprintf("%s (%d bytes)", v.TypeUrl, len(v.Value))
				}
			}
			ns.Containers = append(ns.Containers, o)
		}
		// leases
		lm := metadata.NewLeaseManager(mdb)
		ls, err := lm.List(ctx)
		if err != nil {
			die("leases.List(%s): %v", name, err)
		}
		for _, l := range ls {
			o := Lease{ID: l.ID, Labels: l.Labels, Created: l.CreatedAt}
			rs, err := lm.ListResources(ctx, leases.Lease{ID: l.ID})
			if err != nil {
				die("leases.ListResources(%s/%s): %v", name, l.ID, err)
			}
			for _, r := range rs {
				o.Resources = append(o.Resources, r.Type+":"+r.ID)
			}
			ns.Leases = append(ns.Leases, o)
		}
		// snapshots
		for _, sn := range snNames {
			s := mdb.Snapshotter(sn)
			var list []Snapshot
			err := s.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
				list = append(list, Snapshot{Key: info.Name, Kind: info.Kind.String(), Parent: info.Parent, Labels: info.Labels, Created: info.Created})
				return nil
			})
			if err != nil {
				die("snapshots.Walk(%s/%s): %v", name, sn, err)
			}
			if len(list) > 0 {
				ns.Snapshots[sn] = list
			}
		}
		rep.Namespaces = append(rep.Namespaces, ns)
	}
	return rep
}

func bucket(tx *bolt.Tx, keys ...string) *bolt.Bucket {
	b := tx.Bucket([]byte(keys[0]))
	for _, k := range keys[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket([]byte(k))
	}
	return b
}

// ---------------------------------------------------------------- GC dry run

func runGC(path string) {
	tmp, err := ioutil.TempFile("", "ctrmeta-gc-*.db")
	if err != nil {
		die("%v", err)
	}
	defer os.Remove(tmp.Name())
	src, err := os.Open(path)
	if err != nil {
		die("%v", err)
	}
	if _, err := io.Copy(tmp, src); err != nil {
		die("%v", err)
	}
	src.Close()
	tmp.Close()

	bdb, err := bolt.Open(tmp.Name(), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		die("open copy: %v", err)
	}
	defer bdb.Close()
	base, snNames := backends(bdb)
	rec := &recordingStore{Store: base}
	var removed []string
	ss := map[string]snapshots.Snapshotter{}
	for _, n := range snNames {
		ss[n] = snapshotterFor(n, &removed)
	}
	defer cleanupTmp()
	mdb := metadata.NewDB(bdb, rec, ss)
	if err := mdb.Init(context.Background()); err != nil {
		die("metadata Init: %v", err)
	}
	cav := gcCaveats(bdb)
	before := flatten(collect(mdb, bdb, path, snNames))
	stats, err := mdb.GarbageCollect(context.Background())
	if err != nil {
		die("GarbageCollect: %v", err)
	}
	after := flatten(collect(mdb, bdb, path, snNames))
	gone := []string{}
	for k := range before {
		if !after[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	if rec.deleted == nil {
		rec.deleted = []string{}
	}
	if rec.aborted == nil {
		rec.aborted = []string{}
	}
	if removed == nil {
		removed = []string{}
	}
	sort.Strings(rec.deleted)
	sort.Strings(rec.aborted)
	sort.Strings(removed)
	res := map[string]interface{}{
		"file":                          path,
		"gc_elapsed":                    stats.Elapsed().String(),
		"metadata_objects_removed":      gone,
		"backend_content_deletes":       rec.deleted,
		"backend_ingest_aborts":         rec.aborted,
		"backend_snapshot_removes":      removed,
		"metadata_objects_before_after": []int{len(before), len(after)},
		"note":                          "backends record Delete/Remove instead of executing them; without -root they are empty stubs, so orphaned blobs/snapshots on disk are not seen",
		"caveats_1_6_gc":                cav,
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(res)
		return
	}
	fmt.Printf("GC dry run on copy of %s (elapsed %s)\n", path, stats.Elapsed())
	for _, w := range cav {
		fmt.Println("caveat:", w)
	}
	fmt.Printf("metadata objects before=%d after=%d\n", len(before), len(after))
	for _, g := range gone {
		fmt.Println("removed:", g)
	}
	for _, d := range rec.deleted {
		fmt.Println("backend-content-delete:", d)
	}
	for _, d := range rec.aborted {
		fmt.Println("backend-ingest-abort:", d)
	}
	for _, d := range removed {
		fmt.Println("backend-snapshot-remove:", d)
	}
}

func listBackendSnapshots() {
	if *root == "" {
		die("-backend-snapshots needs -root")
	}
	dirs, _ := filepath.Glob(filepath.Join(*root, "io.containerd.snapshotter.v1.*", "metadata.db"))
	var lines []string
	for _, d := range dirs {
		name := strings.TrimPrefix(filepath.Base(filepath.Dir(d)), "io.containerd.snapshotter.v1.")
		sn := snapshotterFor(name, nil)
		err := sn.Walk(context.Background(), func(ctx context.Context, info snapshots.Info) error {
			lines = append(lines, fmt.Sprintf("%s %s %s", name, info.Name, info.Kind))
			return nil
		})
		if err != nil {
			die("walk %s: %v", name, err)
		}
	}
	cleanupTmp()
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, "\n"))
}

func cleanupTmp() {
	for _, f := range tmpFiles {
		os.Remove(f)
	}
	for _, d := range tmpDirs {
		os.RemoveAll(d)
	}
}

func flatten(r *Report) map[string]bool {
	m := map[string]bool{}
	for _, ns := range r.Namespaces {
		m[ns.Name+" namespace "+ns.Name] = true
		for _, i := range ns.Images {
			m[ns.Name+" image "+i.Name] = true
		}
		for _, b := range ns.Content {
			m[ns.Name+" content "+b.Digest] = true
		}
		for _, i := range ns.Ingests {
			m[ns.Name+" ingest "+i.Ref] = true
		}
		for _, c := range ns.Containers {
			m[ns.Name+" container "+c.ID] = true
		}
		for _, l := range ns.Leases {
			m[ns.Name+" lease "+l.ID] = true
		}
		for sn, list := range ns.Snapshots {
			for _, s := range list {
				m[ns.Name+" snapshot "+sn+"/"+s.Key] = true
			}
		}
	}
	return m
}

// ---------------------------------------------------------------- output

func output(r *Report) {
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(r)
		return
	}
	fmt.Printf("meta.db %s (v1/version=%s)\n", r.File, r.DBVersion)
	if x := r.RawExtras; x != nil {
		fmt.Printf("raw (not modelled by the 1.6 metadata package): top-level buckets=%v\n", x.TopLevelBuckets)
		for _, sb := range x.Sandboxes {
			fmt.Printf("  sandbox %s/%s @%s sandboxer=%q runtime=%q labels=%d extensions=%v\n", sb.Namespace, sb.ID, sb.Location, sb.Sandboxer, sb.Runtime, len(sb.Labels), sb.Exts)
		}
		for _, li := range x.LeaseImages {
			fmt.Printf("  lease image resource %s\n", li)
		}
		for k, v := range x.ContainerSbIDs {
			fmt.Printf("  container %s sandboxid=%q\n", k, v)
		}
		for _, e := range x.ImagesWithExp {
			fmt.Printf("  image with containerd.io/gc.expire: %s\n", e)
		}
		for k, v := range x.UnknownNSKeys {
			fmt.Printf("  namespace %s: unknown buckets/keys %v\n", k, v)
		}
	}
	for _, ns := range r.Namespaces {
		fmt.Printf("\n== namespace %q labels=%v\n", ns.Name, ns.Labels)
		fmt.Printf("  images (%d):\n", len(ns.Images))
		for _, i := range ns.Images {
			fmt.Printf("    %s -> %s %s size=%d labels=%v\n", i.Name, i.Digest, i.MediaType, i.Size, i.Labels)
			if *root != "" {
				av := "?"
				if i.Available != nil {
					av = fmt.Sprint(*i.Available)
				}
				fmt.Printf("       platforms=%v available(host)=%s missing=%v size(host)=%d %s\n", i.Platforms, av, i.Missing, i.UnpackSize, i.CheckErr)
			}
		}
		fmt.Printf("  content (%d):\n", len(ns.Content))
		for _, b := range ns.Content {
			fmt.Printf("    %s size=%d labels=%d\n", b.Digest, b.Size, len(b.Labels))
		}
		if len(ns.Ingests) > 0 {
			fmt.Printf("  ingests (%d):\n", len(ns.Ingests))
			for _, i := range ns.Ingests {
				ea := "-"
				if i.ExpireAt != nil {
					ea = i.ExpireAt.UTC().Format(time.RFC3339)
				}
				fmt.Printf("    ref=%q backend_ref=%q expected=%q expireat=%s %s\n", i.Ref, i.BackendRef, i.Expected, ea, i.Status)
			}
		}
		fmt.Printf("  containers (%d):\n", len(ns.Containers))
		for _, c := range ns.Containers {
			fmt.Printf("    %s image=%s runtime=%s snapshotter=%s key=%s spec=%s(%dB) labels=%v ext=%v\n",
				c.ID, c.Image, c.Runtime, c.Snapshotter, c.SnapshotKey, c.SpecType, c.SpecBytes, c.Labels, c.Extensions)
		}
		fmt.Printf("  leases (%d):\n", len(ns.Leases))
		for _, l := range ns.Leases {
			fmt.Printf("    %s labels=%v resources=%v\n", l.ID, l.Labels, l.Resources)
		}
		var sns []string
		for sn := range ns.Snapshots {
			sns = append(sns, sn)
		}
		sort.Strings(sns)
		for _, sn := range sns {
			fmt.Printf("  snapshots[%s] (%d):\n", sn, len(ns.Snapshots[sn]))
			for _, s := range ns.Snapshots[sn] {
				fmt.Printf("    %s kind=%s parent=%s labels=%v\n", s.Key, s.Kind, s.Parent, s.Labels)
			}
		}
	}
}

// ---------------------------------------------------------------- raw extras

var knownNSBuckets = map[string]bool{"labels": true, "images": true, "containers": true, "snapshots": true, "content": true, "leases": true}

func rawExtras(bdb *bolt.DB) *RawExtras {
	x := &RawExtras{Note: "read with raw bbolt: containerd 1.6.20's metadata package ignores these", ContainerSbIDs: map[string]string{}, UnknownNSKeys: map[string][]string{}}
	readSB := func(loc, ns string, b *bolt.Bucket) {
		_ = b.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			sb := b.Bucket(k)
			o := RawSandbox{Location: loc, Namespace: ns, ID: string(k), Sandboxer: string(sb.Get([]byte("sandboxer")))}
			if rb := sb.Bucket([]byte("runtime")); rb != nil {
				o.Runtime = string(rb.Get([]byte("name")))
			}
			if lb := sb.Bucket([]byte("labels")); lb != nil {
				o.Labels = map[string]string{}
				_ = lb.ForEach(func(k, v []byte) error { o.Labels[string(k)] = string(v); return nil })
			}
			if eb := sb.Bucket([]byte("extensions")); eb != nil {
				_ = eb.ForEach(func(k, v []byte) error { o.Exts = append(o.Exts, string(k)); return nil })
			}
			if c := sb.Get([]byte("createdat")); c != nil {
				var t time.Time
				if t.UnmarshalBinary(c) == nil {
					o.Created = &t
				}
			}
			x.Sandboxes = append(x.Sandboxes, o)
			return nil
		})
	}
	_ = bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, top *bolt.Bucket) error {
			x.TopLevelBuckets = append(x.TopLevelBuckets, string(name))
			if string(name) != "v1" {
				// 1.7: <ns>/sandboxes at the top level
				if sb := top.Bucket([]byte("sandboxes")); sb != nil {
					readSB(string(name)+"/sandboxes", string(name), sb)
				}
				return nil
			}
			return top.ForEach(func(ns, v []byte) error {
				if v != nil {
					return nil
				}
				nb := top.Bucket(ns)
				_ = nb.ForEach(func(k, v []byte) error {
					if !knownNSBuckets[string(k)] && string(k) != "sandboxes" {
						x.UnknownNSKeys[string(ns)] = append(x.UnknownNSKeys[string(ns)], string(k))
					}
					return nil
				})
				if sb := nb.Bucket([]byte("sandboxes")); sb != nil {
					readSB("v1/"+string(ns)+"/sandboxes", string(ns), sb)
				}
				if lb := nb.Bucket([]byte("leases")); lb != nil {
					_ = lb.ForEach(func(id, v []byte) error {
						if v != nil {
							return nil
						}
						if ib := lb.Bucket(id).Bucket([]byte("images")); ib != nil {
							_ = ib.ForEach(func(k, v []byte) error {
								x.LeaseImages = append(x.LeaseImages, string(ns)+" "+string(id)+" images:"+string(k))
								return nil
							})
						}
						return nil
					})
				}
				if cb := nb.Bucket([]byte("containers")); cb != nil {
					_ = cb.ForEach(func(id, v []byte) error {
						if v != nil {
							return nil
						}
						if s := cb.Bucket(id).Get([]byte("sandboxid")); s != nil {
							x.ContainerSbIDs[string(ns)+"/"+string(id)] = string(s)
						}
						return nil
					})
				}
				if ib := nb.Bucket([]byte("images")); ib != nil {
					_ = ib.ForEach(func(k, v []byte) error {
						if v != nil {
							return nil
						}
						if lb := ib.Bucket(k).Bucket([]byte("labels")); lb != nil {
							if e := lb.Get([]byte("containerd.io/gc.expire")); e != nil {
								x.ImagesWithExp = append(x.ImagesWithExp, string(ns)+" "+string(k)+" expire="+string(e))
							}
						}
						return nil
					})
				}
				return nil
			})
		})
	})
	if len(x.ContainerSbIDs) == 0 {
		x.ContainerSbIDs = nil
	}
	if len(x.UnknownNSKeys) == 0 {
		x.UnknownNSKeys = nil
	}
	return x
}

// gcCaveats lists the DB features on which containerd 1.6's GC (used by -gc)
// is known to differ from the GC of newer releases.
func gcCaveats(bdb *bolt.DB) []string {
	out := []string{}
	x := rawExtras(bdb)
	_ = bdb.View(func(tx *bolt.Tx) error {
		if v1 := tx.Bucket([]byte("v1")); v1 != nil {
			if b := v1.Get([]byte("version")); b != nil {
				if v, _ := binary.Varint(b); v > 3 {
					out = append(out, fmt.Sprintf("v1/version=%d (> 3, written by containerd 2.x); the 1.6 GC below models dbVersion 3", v))
				}
			}
		}
		return nil
	})
	for _, t := range x.TopLevelBuckets {
		if t != "v1" {
			out = append(out, "top-level bucket "+t+" (containerd 1.7 sandbox store); 1.6 GC ignores it, 1.7 GC looks under v1/<ns>/sandboxes, 2.x migrates and deletes it")
		}
	}
	for _, l := range x.LeaseImages {
		out = append(out, "lease image resource "+l+" (2.x): 1.6 GC does not see it (harmless while every image is a root in 1.6)")
	}
	for _, e := range x.ImagesWithExp {
		out = append(out, "image with gc.expire "+e+": 2.x GC deletes expired, unleased image records; 1.6 GC never deletes images")
	}
	if len(x.Sandboxes) > 0 {
		out = append(out, fmt.Sprintf("%d sandbox records: 1.7/2.x GC roots their gc.ref labels; 1.6 GC ignores sandboxes", len(x.Sandboxes)))
	}
	return out
}
