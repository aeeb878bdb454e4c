package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CSVLoggerConfig holds the arguments of keras.callbacks.CSVLogger.
type CSVLoggerConfig struct {
	// Name identifies the callback in Fit's errors and in the resume state ("" is "CSVLogger"): two
	// callbacks of one kind, e.g. two ModelCheckpoints on different monitors, need their own.
	Name     string
	Filename string
	// Separator is a single character; "" means ",".
	Separator string
	Append    bool
}

// CSVLogger streams epoch logs to a CSV file the way Keras 3.15.1
// keras/src/callbacks/csv_logger.py does: columns "epoch" then the sorted log
// keys of the first epoch (plus "val_"+key for each when the first epoch has
// no "val_" key), Python float repr values, "NA" for missing keys, csv.excel
// dialect (CRLF line ends, minimal quoting), flushed every epoch.
type CSVLogger struct {
	cfg     CSVLoggerConfig
	sep     string
	file    *os.File
	st      csvLoggerState
	resumed bool
}

type csvLoggerState struct {
	// Keys are the columns after "epoch"; fixed by the first epoch.
	Keys    []string `json:"keys"`
	KeysSet bool     `json:"keys_set"`
	// AppendHeader is Keras' append_header: false when appending to a
	// non-empty file.
	AppendHeader bool `json:"append_header"`
	// Size is the file length after the last row, so a resume drops rows
	// written after the state was saved.
	Size int64 `json:"size"`
}

func NewCSVLogger(cfg CSVLoggerConfig) (*CSVLogger, error) {
	if cfg.Filename == "" {
		return nil, errors.New("CSVLogger: empty filename")
	}
	sep := cfg.Separator
	if sep == "" {
		sep = ","
	}
	if utf8.RuneCountInString(sep) != 1 || strings.ContainsAny(sep, "\"\r\n") {
		return nil, fmt.Errorf("CSVLogger: separator must be a single character other than quote or newline, got %q", cfg.Separator)
	}
	return &CSVLogger{cfg: cfg, sep: sep}, nil
}

func (c *CSVLogger) Name() string { return nameOr(c.cfg.Name, "CSVLogger") }

// OnTrainBegin opens the file: truncating, appending (Keras' append=True),
// or, after UnmarshalState, cut back to the saved length and continued.
func (c *CSVLogger) OnTrainBegin(Model) error {
	if err := c.close(); err != nil {
		return err
	}
	if c.resumed {
		c.resumed = false
		return c.reopen()
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	appendHeader := true
	if c.cfg.Append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		// Keras: append_header = not bool(len(f.readline())), i.e. the file is empty.
		if info, err := os.Stat(c.cfg.Filename); err == nil {
			appendHeader = info.Size() == 0
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", c.cfg.Filename, err)
		}
	}
	f, err := os.OpenFile(c.cfg.Filename, flags, 0o644)
	if err != nil {
		return fmt.Errorf("open csv log: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat csv log: %w", err)
	}
	c.file = f
	c.st = csvLoggerState{AppendHeader: appendHeader, Size: info.Size()}
	return nil
}

func (c *CSVLogger) reopen() error {
	f, err := os.OpenFile(c.cfg.Filename, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open csv log to resume: %w", err)
	}
	if err := f.Truncate(c.st.Size); err != nil {
		f.Close()
		return fmt.Errorf("cut csv log back to %d bytes: %w", c.st.Size, err)
	}
	if _, err := f.Seek(c.st.Size, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seek csv log: %w", err)
	}
	c.file = f
	return nil
}

// OnEpochEnd writes one row (and the header on the first epoch).
func (c *CSVLogger) OnEpochEnd(epoch int, logs EpochLogs, _ Model) error {
	if c.file == nil {
		return errors.New("CSVLogger: on_epoch_end before on_train_begin")
	}
	var text strings.Builder
	if !c.st.KeysSet {
		c.st.Keys = csvColumns(logs)
		c.st.KeysSet = true
		if c.st.AppendHeader {
			c.writeRow(&text, append([]string{"epoch"}, c.st.Keys...))
		}
	}
	row := []string{strconv.Itoa(epoch)}
	for _, k := range c.st.Keys {
		v, ok := logs[k]
		if !ok {
			row = append(row, "NA")
			continue
		}
		row = append(row, pyFloatRepr(v))
	}
	c.writeRow(&text, row)
	// One unbuffered write per epoch: a crash keeps every finished row.
	n, err := c.file.WriteString(text.String())
	c.st.Size += int64(n)
	if err != nil {
		return fmt.Errorf("write csv row for epoch %d: %w", epoch, err)
	}
	return nil
}

// csvColumns: sorted keys, and when none starts with "val_", Keras adds a
// "val_"+key column for every key (they stay "NA" without validation data).
func csvColumns(logs EpochLogs) []string {
	keys := logKeys(logs)
	for _, k := range keys {
		if strings.HasPrefix(k, "val_") {
			return keys
		}
	}
	for _, k := range keys[:len(keys):len(keys)] {
		keys = append(keys, "val_"+k)
	}
	return keys
}

// writeRow follows Python's csv.excel dialect with QUOTE_MINIMAL.
func (c *CSVLogger) writeRow(b *strings.Builder, fields []string) {
	for i, f := range fields {
		if i > 0 {
			b.WriteString(c.sep)
		}
		if strings.Contains(f, c.sep) || strings.ContainsAny(f, "\"\r\n") {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		b.WriteString(f)
	}
	b.WriteString("\r\n")
}

func (c *CSVLogger) OnTrainEnd(Model) error { return c.close() }

func (c *CSVLogger) close() error {
	if c.file == nil {
		return nil
	}
	err := c.file.Close()
	c.file = nil
	if err != nil {
		return fmt.Errorf("close csv log: %w", err)
	}
	return nil
}

func (c *CSVLogger) MarshalState() (json.RawMessage, error) {
	return json.Marshal(c.st)
}

func (c *CSVLogger) UnmarshalState(state json.RawMessage) error {
	var s csvLoggerState
	if err := json.Unmarshal(state, &s); err != nil {
		return fmt.Errorf("CSVLogger state: %w", err)
	}
	c.st = s
	c.resumed = true
	return nil
}
