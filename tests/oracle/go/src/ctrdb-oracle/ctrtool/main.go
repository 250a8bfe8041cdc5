// ctrtool: things `ctr` (1.6) cannot do, done through the real containerd Go
// client against a running daemon, plus a tiny raw CRI (runtime.v1) client
// (no crictl in Debian 12; no generated CRI stubs in Debian's containerd-dev).
//
//	ctrtool -a SOCK -n NS lease   -id ID [-expire 1h] [-label k=v]... [-content DGST]... [-snapshot SN/KEY]... [-ingest REF]...
//	ctrtool -a SOCK -n NS ingest  -ref REF -data STR [-expected DGST] [-size N] [-lease ID]   (write, never commit)
//	ctrtool -a SOCK -n NS blob    -data STR [-label k=v]...                                  (commit a blob with labels)
//	ctrtool -a SOCK -n NS snap    -snapshotter SN -key KEY [-parent P] [-label k=v]...       (Prepare with labels)
//	ctrtool -a SOCK -n NS lease   ... [-image NAME]...      (2.x only: lease resource type "images")
//	ctrtool -a SOCK -n NS lease-add -id ID [-content D]... [-snapshot SN/K]... [-ingest R]... [-image NAME]...
//	ctrtool -a SOCK -n NS image   -name NAME -from SRC [-label k=v]... [-lease ID]        (new image record, target copied from SRC)
//	ctrtool -a SOCK -n NS leases-ls                          (live leases + ListResources, one line per resource)
//	ctrtool -a SOCK cri version
//	ctrtool -a SOCK cri pull IMAGE
//	ctrtool -a SOCK cri images
//	ctrtool -a SOCK cri runp NAME            (host network; prints pod id)
//	ctrtool -a SOCK cri create PODID PODNAME CTRNAME IMAGE
//	ctrtool -a SOCK cri stopp PODID
//
// The client library is Debian's containerd 1.6.20 Go package. It talks plain
// gRPC (containerd.services.*.v1), which containerd 1.7 and 2.x still serve, so
// the same binary drives 1.6, 1.7 and 2.1 daemons.
package main

import (
	"bytes"
	"context"
	_ "crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func kv(m multi) map[string]string {
	out := map[string]string{}
	for _, s := range m {
		p := strings.SplitN(s, "=", 2)
		if len(p) == 2 {
			out[p[0]] = p[1]
		} else {
			out[p[0]] = ""
		}
	}
	return out
}

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "ctrtool: "+f+"\n", a...)
	os.Exit(1)
}

func main() {
	addr := flag.String("a", "", "containerd socket (required)")
	ns := flag.String("n", "default", "namespace")
	flag.Parse()
	if flag.NArg() < 1 {
		die("need a subcommand")
	}
	if *addr == "" {
		die("-a SOCKET is required")
	}
	client, err := containerd.New(*addr, containerd.WithTimeout(10*time.Second))
	if err != nil {
		die("connect: %v", err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), *ns)
	podLogRoot = filepath.Join(filepath.Dir(*addr), "pod-logs")
	cmd, args := flag.Arg(0), flag.Args()[1:]

	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	var labels, cnt, snaps, ings, imgs multi
	id := fs.String("id", "", "lease id")
	expire := fs.Duration("expire", 0, "lease expiration (0 = none)")
	ref := fs.String("ref", "", "ingest ref")
	data := fs.String("data", "", "data")
	expected := fs.String("expected", "", "expected digest")
	size := fs.Int64("size", 0, "expected size")
	lease := fs.String("lease", "", "run under lease")
	sn := fs.String("snapshotter", "overlayfs", "snapshotter")
	key := fs.String("key", "", "snapshot key")
	parent := fs.String("parent", "", "snapshot parent")
	fs.Var(&labels, "label", "k=v label (repeatable)")
	fs.Var(&cnt, "content", "content digest resource (repeatable)")
	fs.Var(&snaps, "snapshot", "SNAPSHOTTER/KEY resource (repeatable)")
	fs.Var(&ings, "ingest", "ingest ref resource (repeatable)")
	fs.Var(&imgs, "image", "image name resource (repeatable; containerd 2.x only)")
	name := fs.String("name", "", "image name to create")
	from := fs.String("from", "", "existing image whose target is copied")

	switch cmd {
	case "lease", "lease-add":
		_ = fs.Parse(args)
		lm := client.LeasesService()
		var l leases.Lease
		if cmd == "lease-add" { // add resources to an existing lease
			if *id == "" {
				die("lease-add needs -id")
			}
			l = leases.Lease{ID: *id}
		} else {
			opts := []leases.Opt{leases.WithLabels(kv(labels))}
			if *id != "" {
				opts = append(opts, leases.WithID(*id))
			}
			if *expire > 0 {
				opts = append(opts, leases.WithExpiration(*expire))
			}
			var err error
			l, err = lm.Create(ctx, opts...)
			if err != nil {
				die("lease create: %v", err)
			}
		}
		add := func(r leases.Resource) {
			if err := lm.AddResource(ctx, l, r); err != nil {
				die("lease add %v: %v", r, err)
			}
		}
		for _, c := range cnt {
			add(leases.Resource{ID: c, Type: "content"})
		}
		for _, s := range snaps {
			p := strings.SplitN(s, "/", 2)
			add(leases.Resource{ID: p[1], Type: "snapshots/" + p[0]})
		}
		for _, i := range ings {
			add(leases.Resource{ID: i, Type: "ingests"})
		}
		for _, i := range imgs {
			add(leases.Resource{ID: i, Type: "images"})
		}
		fmt.Println(l.ID)
	case "leases-ls":
		lm := client.LeasesService()
		ls, err := lm.List(ctx)
		if err != nil {
			die("lease list: %v", err)
		}
		for _, l := range ls {
			rs, err := lm.ListResources(ctx, l)
			if err != nil {
				die("lease %s resources: %v", l.ID, err)
			}
			if len(rs) == 0 {
				fmt.Printf("%s -\n", l.ID)
			}
			for _, r := range rs {
				fmt.Printf("%s %s:%s\n", l.ID, r.Type, r.ID)
			}
		}
	case "image":
		_ = fs.Parse(args)
		if *name == "" || *from == "" {
			die("image needs -name and -from")
		}
		if *lease != "" {
			ctx = leases.WithLease(ctx, *lease)
		}
		is := client.ImageService()
		src, err := is.Get(ctx, *from)
		if err != nil {
			die("get %s: %v", *from, err)
		}
		img, err := is.Create(ctx, images.Image{Name: *name, Target: src.Target, Labels: kv(labels)})
		if err != nil {
			die("create %s: %v", *name, err)
		}
		fmt.Printf("%s %s\n", img.Name, img.Target.Digest)
	case "ingest":
		_ = fs.Parse(args)
		if *lease != "" {
			ctx = leases.WithLease(ctx, *lease)
		}
		desc := ocispec.Descriptor{Size: *size, Digest: digest.Digest(*expected)}
		w, err := content.OpenWriter(ctx, client.ContentStore(), content.WithRef(*ref), content.WithDescriptor(desc))
		if err != nil {
			die("open writer: %v", err)
		}
		if _, err := w.Write([]byte(*data)); err != nil {
			die("write: %v", err)
		}
		st, _ := w.Status()
		// deliberately no Commit: leaves an in-progress ingest behind
		_ = w.Close()
		fmt.Printf("left ingest ref=%s offset=%d total=%d\n", st.Ref, st.Offset, st.Total)
	case "blob":
		_ = fs.Parse(args)
		b := []byte(*data)
		desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(len(b))}
		if *lease != "" {
			ctx = leases.WithLease(ctx, *lease)
		}
		if err := content.WriteBlob(ctx, client.ContentStore(), "ctrdb-blob-"+desc.Digest.Encoded()[:12], bytes.NewReader(b), desc,
			content.WithLabels(kv(labels))); err != nil {
			die("write blob: %v", err)
		}
		fmt.Println(desc.Digest)
	case "snap":
		_ = fs.Parse(args)
		if *lease != "" {
			ctx = leases.WithLease(ctx, *lease)
		}
		if _, err := client.SnapshotService(*sn).Prepare(ctx, *key, *parent, snapshots.WithLabels(kv(labels))); err != nil {
			die("prepare: %v", err)
		}
		fmt.Println(*key)
	case "cri":
		cri(client.Conn(), args)
	default:
		die("unknown subcommand %q", cmd)
	}
}

// ------------------------------------------------------------- raw CRI client

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte{}, data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func call(conn *grpc.ClientConn, method string, req []byte) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var resp []byte
	if err := conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		die("%s: %v", method, err)
	}
	return resp
}

func str(b []byte, f protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, f, protowire.BytesType)
	return protowire.AppendString(b, s)
}
func msg(b []byte, f protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, f, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}
func vint(b []byte, f protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, f, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
func mapEntry(b []byte, f protowire.Number, k, v string) []byte {
	return msg(b, f, str(str(nil, 1, k), 2, v))
}

// fields decodes one message level into field -> list of raw values.
func fields(b []byte) map[protowire.Number][][]byte {
	out := map[protowire.Number][][]byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			out[num] = append(out[num], v)
			b = b[n:]
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			out[num] = append(out[num], []byte(fmt.Sprint(v)))
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return out
			}
			b = b[n:]
		}
	}
	return out
}

func strs(vs [][]byte) []string {
	var o []string
	for _, v := range vs {
		o = append(o, string(v))
	}
	return o
}

func imageSpec(img string) []byte { return str(nil, 1, img) }

var podLogRoot string // <socket dir>/pod-logs, set in main

func podConfig(name string) []byte {
	md := str(str(str(nil, 1, name), 2, "uid-"+name), 3, "ctrdb")
	md = vint(md, 4, 0)
	// NamespaceOption{network=NODE(2)}; pid/ipc stay POD(0). Host network means
	// CRI skips CNI entirely, so no CNI config is needed.
	nsopt := vint(nil, 1, 2)
	secctx := msg(nil, 1, nsopt)
	linux := msg(nil, 2, secctx)
	c := msg(nil, 1, md)
	// no hostname (field 2): with host network there is no private UTS
	// namespace and runc refuses to set one.
	c = str(c, 3, podLogRoot+"/"+name)
	c = mapEntry(c, 6, "app", name)
	c = mapEntry(c, 7, "ctrdb/annotation", "yes")
	c = msg(c, 8, linux)
	return c
}

func cri(conn *grpc.ClientConn, args []string) {
	if len(args) < 1 {
		die("cri: need version|pull|images|runp|create|stopp")
	}
	switch args[0] {
	case "version":
		f := fields(call(conn, "/runtime.v1.RuntimeService/Version", str(nil, 1, "v1")))
		fmt.Printf("version=%s runtime=%s %s api=%s\n", f[1], f[2], f[3], f[4])
	case "pull":
		req := msg(nil, 1, imageSpec(args[1]))
		f := fields(call(conn, "/runtime.v1.ImageService/PullImage", req))
		fmt.Println(strs(f[1])[0])
	case "images":
		f := fields(call(conn, "/runtime.v1.ImageService/ListImages", nil))
		for _, im := range f[1] {
			g := fields(im)
			fmt.Printf("id=%s tags=%v digests=%v size=%s\n", strs(g[1]), strs(g[2]), strs(g[3]), strs(g[4]))
		}
	case "runp":
		name := args[1]
		_ = os.MkdirAll(podLogRoot+"/"+name, 0o755)
		f := fields(call(conn, "/runtime.v1.RuntimeService/RunPodSandbox", msg(nil, 1, podConfig(name))))
		fmt.Println(strs(f[1])[0])
	case "create":
		podID, podName, ctrName, img := args[1], args[2], args[3], args[4]
		cc := msg(nil, 1, vint(str(nil, 1, ctrName), 2, 0))
		cc = msg(cc, 2, imageSpec(img))
		cc = str(cc, 3, "/hello.sh")
		cc = msg(cc, 6, str(str(nil, 1, "CTRDB"), 2, "1"))
		cc = mapEntry(cc, 9, "ctrdb/ctr", ctrName)
		cc = str(cc, 11, ctrName+".log")
		cc = msg(cc, 15, nil)
		req := msg(str(nil, 1, podID), 2, cc)
		req = msg(req, 3, podConfig(podName))
		f := fields(call(conn, "/runtime.v1.RuntimeService/CreateContainer", req))
		fmt.Println(strs(f[1])[0])
	case "stopp":
		call(conn, "/runtime.v1.RuntimeService/StopPodSandbox", str(nil, 1, args[1]))
		fmt.Println("stopped", args[1])
	default:
		die("cri: unknown %q", args[0])
	}
}
