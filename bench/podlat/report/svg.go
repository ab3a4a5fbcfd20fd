package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/rtt"
)

// The chart is a percentile spectrum per protocol: for each agent and
// path, the round-trip time (y, linear) at each percentile (x, spaced by
// log10(1/(1-q)) so that p50, p90, p99 and p99.9 are evenly readable).
const (
	chartWidth   = 960
	panelHeight  = 360
	marginLeft   = 70
	marginRight  = 250
	marginTop    = 44
	marginBottom = 46
	// densePoints bounds the points drawn below p99 per series; every
	// point from p99 up is drawn.
	densePoints = 1000
)

var pathColors = map[string]string{
	PathSameNode:  "#2ca02c",
	PathCrossNode: "#d62728",
	PathUnderlay:  "#1f77b4",
}

var agentDashes = []string{"", "7 4", "2 3", "9 3 2 3"}

// series is one line: an agent's path for one protocol.
type series struct {
	label  string
	color  string
	dash   string
	sorted []time.Duration
	p999   time.Duration
}

// WriteSVG draws one panel per protocol that has round trips.
func WriteSVG(w io.Writer, r Report) error {
	var panels [][]series
	var protos []string
	for _, proto := range rtt.Protocols() {
		if s := seriesFor(r, string(proto)); len(s) > 0 {
			panels = append(panels, s)
			protos = append(protos, string(proto))
		}
	}
	height := max(1, len(panels)) * panelHeight
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartWidth, height)
	if len(panels) == 0 {
		fmt.Fprintf(&b, `<text x="20" y="40">no round trips measured</text>`+"\n")
	}
	for i, s := range panels {
		drawPanel(&b, r, protos[i], s, float64(i*panelHeight), i)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func seriesFor(r Report, proto string) []series {
	var out []series
	for ai, a := range r.Agents {
		for _, id := range PathIDs() {
			l := a.Path(id).ByProtocol(proto)
			if l == nil || len(l.RTTs) == 0 {
				continue
			}
			sorted := slices.Clone(l.RTTs)
			slices.Sort(sorted)
			out = append(out, series{
				label:  a.Name + " · " + id,
				color:  pathColors[id],
				dash:   agentDashes[ai%len(agentDashes)],
				sorted: sorted,
				p999:   rtt.Percentile(sorted, 0.999),
			})
		}
	}
	return out
}

// panel maps data to pixels inside one panel.
type panel struct {
	top, left, width, height float64
	xMax                     float64 // log10(1/(1-q)) at the right edge
	yMin, yMax               float64 // microseconds, log scale
}

func (p panel) x(v float64) float64 { return p.left + p.width*v/p.xMax }

func (p panel) y(us float64) float64 {
	us = math.Max(us, p.yMin/10) // below the axis, clipped anyway
	frac := (math.Log10(us) - math.Log10(p.yMin)) / (math.Log10(p.yMax) - math.Log10(p.yMin))
	return p.top + p.height*(1-frac)
}

func drawPanel(b *bytes.Buffer, r Report, proto string, ss []series, top float64, index int) {
	p := panel{
		top:    top + marginTop,
		left:   marginLeft,
		width:  chartWidth - marginLeft - marginRight,
		height: panelHeight - marginTop - marginBottom,
	}
	n, lo, hi := 0, time.Duration(math.MaxInt64), time.Duration(0)
	for _, s := range ss {
		n = max(n, len(s.sorted))
		lo = min(lo, s.sorted[0])
		hi = max(hi, s.p999)
	}
	p.xMax = math.Max(1, math.Log10(float64(n)))
	p.yMin = niceBelow(float64(lo) / 1e3)
	p.yMax = math.Max(niceAbove(float64(hi)/1e3*1.15), 2*p.yMin)

	fmt.Fprintf(b, `<text x="%d" y="%.0f" font-size="15" font-weight="bold">%s round-trip time by percentile (%d-byte payload, %d round trips per line)</text>`+"\n",
		marginLeft, top+24, strings.ToUpper(proto), r.Params.PayloadBytes, r.Params.RoundTrips)
	drawAxes(b, p)
	clipID := fmt.Sprintf("plot%d", index)
	fmt.Fprintf(b, `<clipPath id="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/></clipPath>`+"\n",
		clipID, p.left, p.top, p.width, p.height)
	for _, s := range ss {
		drawSeries(b, p, s, clipID)
	}
	drawLegend(b, p, ss)
}

func drawAxes(b *bytes.Buffer, p panel) {
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", p.left, p.top, p.width, p.height)
	for _, v := range niceValues(p.yMin, p.yMax) {
		y := p.y(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", p.left, y, p.left+p.width, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", p.left-6, y+4, trimFloat(v))
	}
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">round trip (µs, log scale)</text>`+"\n",
		p.left-48, p.top+p.height/2)
	for _, t := range percentileTicks(p.xMax) {
		x := p.x(t.pos)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, p.top, x, p.top+p.height)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, p.top+p.height+16, t.label)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">percentile (values above p99.9 may be clipped at the top edge)</text>`+"\n",
		p.left+p.width/2, p.top+p.height+36)
}

type tick struct {
	pos   float64
	label string
}

func percentileTicks(xMax float64) []tick {
	all := []tick{{0, "0%"}, {math.Log10(2), "50%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}}
	var ticks []tick
	for _, t := range all {
		if t.pos <= xMax+1e-9 {
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func drawSeries(b *bytes.Buffer, p panel, s series, clipID string) {
	n := len(s.sorted)
	step := max(1, int(0.99*float64(n))/densePoints)
	var pts strings.Builder
	for i, d := range s.sorted {
		if i%step != 0 && float64(i) < 0.99*float64(n) && i != n-1 {
			continue
		}
		pos := math.Log10(float64(n) / float64(n-i))
		fmt.Fprintf(&pts, "%.1f,%.1f ", p.x(pos), p.y(float64(d)/1e3))
	}
	fmt.Fprintf(b, `<polyline clip-path="url(#%s)" fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`+"\n",
		clipID, s.color, dashAttr(s.dash), strings.TrimSpace(pts.String()))
}

func drawLegend(b *bytes.Buffer, p panel, ss []series) {
	x := p.left + p.width + 16
	for i, s := range ss {
		y := p.top + 8 + float64(i)*20
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"%s/>`+"\n",
			x, y, x+28, y, s.color, dashAttr(s.dash))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x+34, y+4, escape(s.label))
	}
}

func dashAttr(dash string) string {
	if dash == "" {
		return ""
	}
	return fmt.Sprintf(` stroke-dasharray="%s"`, dash)
}

func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceMantissas are the gridline values within a decade.
var niceMantissas = []float64{1, 2, 5}

// niceAbove is the smallest 1, 2 or 5 times a power of ten >= v (v > 0).
func niceAbove(v float64) float64 {
	if v <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range niceMantissas {
		if m*pow >= v*(1-1e-9) {
			return m * pow
		}
	}
	return 10 * pow
}

// niceBelow is the largest 1, 2 or 5 times a power of ten <= v (v > 0).
func niceBelow(v float64) float64 {
	if v <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	best := pow
	for _, m := range niceMantissas {
		if m*pow <= v*(1+1e-9) {
			best = m * pow
		}
	}
	return best
}

// niceValues lists the 1-2-5 values from lo to hi, both included.
func niceValues(lo, hi float64) []float64 {
	var vs []float64
	for v := lo; v <= hi*(1+1e-9); v = niceAbove(v * 1.0001) {
		vs = append(vs, v)
	}
	return vs
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
