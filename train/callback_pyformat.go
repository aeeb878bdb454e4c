package train

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// pyFloatRepr formats like Python's repr(float), which is what Keras writes
// into CSV files and str.format paths: shortest round-trip digits, fixed
// notation with a trailing ".0" when 1e-4 <= |x| < 1e16, else "1e-05" style.
func pyFloatRepr(x float64) string {
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	sci := strconv.FormatFloat(x, 'e', -1, 64)
	mantissa, expText, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(expText)
	if x != 0 && (exp < -4 || exp >= 16) {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mantissa, sign, exp)
	}
	fixed := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.Contains(fixed, ".") {
		fixed += ".0"
	}
	return fixed
}

// logKeys returns the log names sorted, the order Keras' pythonify_logs gives.
func logKeys(logs EpochLogs) []string {
	keys := make([]string, 0, len(logs))
	for k := range logs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// formatCheckpointPath is the subset of Python's str.format that Keras'
// ModelCheckpoint applies as filepath.format(epoch=epoch + 1, **logs):
// "{{" and "}}" escapes, "{name}" and "{name:spec}" with spec
// [[fill]align][sign][0][width][.precision][type], type one of d f F e E g G %.
// Conversions ("!r"), attribute/index lookups and nested fields are rejected.
// EscapeFilepath makes a path a ModelCheckpoint filepath that formats to itself (Python's
// "{{" and "}}"): a run directory named "runs/{x}" is a name, not a template.
func EscapeFilepath(path string) string {
	return strings.NewReplacer("{", "{{", "}", "}}").Replace(path)
}

func formatCheckpointPath(template string, epoch int, logs EpochLogs) (string, error) {
	var out strings.Builder
	for i := 0; i < len(template); i++ {
		c := template[i]
		switch {
		case c == '{' && i+1 < len(template) && template[i+1] == '{':
			out.WriteByte('{')
			i++
		case c == '}' && i+1 < len(template) && template[i+1] == '}':
			out.WriteByte('}')
			i++
		case c == '}':
			return "", fmt.Errorf("single '}' encountered in format string %q", template)
		case c == '{':
			end := strings.IndexByte(template[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("single '{' encountered in format string %q", template)
			}
			field := template[i+1 : i+end]
			text, err := formatField(field, epoch, logs)
			if err != nil {
				return "", fmt.Errorf("failed to format this callback filepath: %q: %w", template, err)
			}
			out.WriteString(text)
			i += end
		default:
			out.WriteByte(c)
		}
	}
	return out.String(), nil
}

func formatField(field string, epoch int, logs EpochLogs) (string, error) {
	name, spec, _ := strings.Cut(field, ":")
	if strings.ContainsAny(name, "!.[{") || strings.Contains(spec, "{") {
		return "", fmt.Errorf("unsupported replacement field {%s}", field)
	}
	if name == "epoch" {
		return formatNumber(float64(epoch), true, spec)
	}
	v, ok := logs[name]
	if !ok {
		return "", fmt.Errorf("KeyError: '%s'", name)
	}
	return formatNumber(v, false, spec)
}

type formatSpec struct {
	fill      byte
	align     byte
	sign      byte
	width     int
	precision int // -1 when absent
	kind      byte
}

func parseFormatSpec(spec string) (formatSpec, error) {
	f := formatSpec{fill: ' ', precision: -1}
	s := spec
	if len(s) >= 2 && strings.IndexByte("<>=^", s[1]) >= 0 {
		f.fill, f.align, s = s[0], s[1], s[2:]
	} else if len(s) >= 1 && strings.IndexByte("<>=^", s[0]) >= 0 {
		f.align, s = s[0], s[1:]
	}
	if len(s) > 0 && strings.IndexByte("+- ", s[0]) >= 0 {
		f.sign, s = s[0], s[1:]
	}
	if len(s) > 0 && s[0] == '0' {
		if f.align == 0 {
			f.fill, f.align = '0', '='
		}
		s = s[1:]
	}
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		f.width, _ = strconv.Atoi(s[:digits])
		s = s[digits:]
	}
	if len(s) > 0 && s[0] == '.' {
		digits = 1
		for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
			digits++
		}
		if digits == 1 {
			return f, fmt.Errorf("format specifier missing precision in %q", spec)
		}
		f.precision, _ = strconv.Atoi(s[1:digits])
		s = s[digits:]
	}
	if len(s) > 1 || (len(s) == 1 && strings.IndexByte("dfFeEgG%", s[0]) < 0) {
		return f, fmt.Errorf("unsupported format specifier %q", spec)
	}
	if len(s) == 1 {
		f.kind = s[0]
	}
	return f, nil
}

// formatNumber applies spec to an int (isInt) or a float like Python's format().
func formatNumber(v float64, isInt bool, spec string) (string, error) {
	f, err := parseFormatSpec(spec)
	if err != nil {
		return "", err
	}
	negative := math.Signbit(v) && !math.IsNaN(v)
	abs := math.Abs(v)
	var body string
	switch {
	case f.kind == 'd':
		if !isInt {
			return "", fmt.Errorf("unknown format code 'd' for object of type 'float'")
		}
		body = strconv.FormatInt(int64(abs), 10)
	case isInt && f.kind == 0:
		if f.precision >= 0 {
			return "", fmt.Errorf("precision not allowed in integer format specifier")
		}
		body = strconv.FormatInt(int64(abs), 10)
	case math.IsNaN(v) || math.IsInf(v, 0):
		body = "inf"
		if math.IsNaN(v) {
			body = "nan"
		}
		if f.kind == 'F' || f.kind == 'E' || f.kind == 'G' {
			body = strings.ToUpper(body)
		}
		if f.kind == '%' {
			body += "%"
		}
	case f.kind == 0 && f.precision < 0:
		body = pyFloatRepr(abs)
	case f.kind == 0:
		return "", fmt.Errorf("float format with precision but no type is not supported (%q)", spec)
	default:
		body = formatFloatKind(abs, f)
	}
	sign := ""
	switch {
	case negative:
		sign = "-"
	case f.sign == '+':
		sign = "+"
	case f.sign == ' ':
		sign = " "
	}
	return pad(sign, body, f), nil
}

func formatFloatKind(abs float64, f formatSpec) string {
	precision := f.precision
	if precision < 0 {
		precision = 6
	}
	switch f.kind {
	case 'f', 'F':
		return strconv.FormatFloat(abs, 'f', precision, 64)
	case 'e', 'E':
		s := strconv.FormatFloat(abs, 'e', precision, 64)
		if f.kind == 'E' {
			s = strings.ToUpper(s)
		}
		return s
	case '%':
		return strconv.FormatFloat(abs*100, 'f', precision, 64) + "%"
	}
	// 'g'/'G': Python and Go agree on when to switch to exponent notation
	// and on dropping trailing zeros.
	if precision == 0 {
		precision = 1
	}
	s := strconv.FormatFloat(abs, 'g', precision, 64)
	if f.kind == 'G' {
		s = strings.ToUpper(s)
	}
	return s
}

func pad(sign, body string, f formatSpec) string {
	n := f.width - len(sign) - len(body)
	if n <= 0 {
		return sign + body
	}
	fill := strings.Repeat(string(f.fill), n)
	switch f.align {
	case '<':
		return sign + body + fill
	case '^':
		left := strings.Repeat(string(f.fill), n/2)
		return left + sign + body + strings.Repeat(string(f.fill), n-n/2)
	case '=':
		return sign + fill + body
	}
	return fill + sign + body
}
