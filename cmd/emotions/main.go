// Command emotions trains, evaluates, serves and exports a facial-emotion classifier built
// with Keras, driving TensorFlow's C API from Go. Each subcommand lives in its own file and
// stays thin: the work is done by the packages preprocess, tfgraph, train and tfserving.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	limitMallocArenas()
	app := &cli.App{
		Name:                 "emotions",
		Usage:                "train, evaluate, serve and export a facial-emotion classifier (angry, happy, normal, sad)",
		Description:          "A Keras model exported once (new-model) is trained, evaluated and served from Go through the TensorFlow C API.\nEvery flag can also be set with the environment variable shown beside it.",
		EnableBashCompletion: true,
		Flags:                deviceFlags(),
		Commands: []*cli.Command{
			newModelCommand(),
			infoCommand(),
			preprocessCommand(),
			trainCommand(),
			evaluateCommand(),
			predictCommand(),
			exportCommand(),
			serveCommand(),
			experimentCommand(),
			completionCommand(),
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "emotions:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode: 2 for usage errors, 130 for an interrupted run (as a shell reports SIGINT), else 1.
func exitCode(err error) int {
	if ec, ok := err.(cli.ExitCoder); ok && ec.ExitCode() != 0 {
		return ec.ExitCode()
	}
	return 1
}
