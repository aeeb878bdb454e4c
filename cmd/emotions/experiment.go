package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/internal/experiment"
)

// experimentCommand is a thin front for package internal/experiment, which runs this very binary
// for each step of a definition.
func experimentCommand() *cli.Command {
	root := &cli.StringFlag{Name: "root", Value: ".", Usage: "repository root (holds experiments/defs/)"}
	results := &cli.StringFlag{Name: "results", EnvVars: []string{"EMOTIONS_RESULTS"}, Usage: "results file to append to (default ROOT/experiments/RESULTS.md)"}
	plots := &cli.StringFlag{Name: "plots", Usage: "copy plots to PLOTS/NAME/ (default ROOT/experiments/results)"}
	return &cli.Command{
		Name:  "experiment",
		Usage: "run the experiment definitions of experiments/defs and record their results",
		Subcommands: []*cli.Command{
			{
				Name:      "run",
				Usage:     "run experiments/defs/NAME.json, evaluate on test and append a row to experiments/RESULTS.md",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{root, results, plots,
					&cli.StringFlag{Name: "runs", Usage: "run directories go here (default ROOT/runs/experiments)"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("experiment run takes one NAME, flags first: experiment run [--results FILE] NAME (see `emotions experiment list`)")
					}
					ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
					defer stop()
					_, err := experiment.Run(ctx, c.Args().First(), experiment.Options{
						Root: c.String("root"), Results: c.String("results"), PlotsDir: c.String("plots"), RunsDir: c.String("runs")})
					return err
				},
			},
			{
				Name:      "resume",
				Usage:     "continue a stopped `experiment run` in its run directory after the last step it finished",
				ArgsUsage: "RUN_DIR",
				Description: "Finished steps are skipped, an interrupted train step continues from its last/ state, and a step\n" +
					"whose command line the definition no longer produces is refused. The row's wall time counts work, not pauses.",
				Flags: []cli.Flag{root, results, plots},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("experiment resume takes one RUN_DIR (printed by experiment run), flags first")
					}
					ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
					defer stop()
					_, err := experiment.Resume(ctx, c.Args().First(), experiment.Options{
						Root: c.String("root"), Results: c.String("results"), PlotsDir: c.String("plots")})
					return err
				},
			},
			{
				Name:  "list",
				Usage: "list the experiment definitions",
				Flags: []cli.Flag{root},
				Action: func(c *cli.Context) error {
					defs, err := experiment.List(c.String("root"))
					if err != nil {
						return err
					}
					for _, d := range defs {
						fmt.Printf("%-22s %-10s %s\n", d.Name, d.Kind, d.Description)
					}
					return nil
				},
			},
			{
				Name:      "record-benchmark",
				Usage:     "add a benchmark's figures (one JSON object) to the Benchmarks section of the results file",
				ArgsUsage: "JSON",
				Flags: []cli.Flag{root, results,
					&cli.StringFlag{Name: "name", Required: true, Usage: "benchmark name, e.g. bench-train"},
					&cli.StringFlag{Name: "command", Required: true, Usage: "command that reproduces the figures"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("record-benchmark takes one JSON object")
					}
					path := c.String("results")
					if path == "" {
						path = filepath.Join(c.String("root"), "experiments", "RESULTS.md")
					}
					return experiment.RecordBenchmark(path, c.String("root"), c.String("name"), c.String("command"), []byte(c.Args().First()))
				},
			},
		},
	}
}
