package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion is urfave/cli v2's autocomplete/bash_autocomplete (MIT), bound to emotions:
// bash asks the binary itself for completions (--generate-bash-completion).
const bashCompletion = `_emotions_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts words
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
    if [[ "$cur" == "-"* ]]; then
      opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
    else
      opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
    fi
    COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
    return 0
  fi
}
complete -o bashdefault -o default -o nospace -F _emotions_bash_autocomplete emotions
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: source <(emotions completion bash)",
		ArgsUsage: "bash|fish",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash", "":
				fmt.Print(bashCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				fmt.Print(s)
			default:
				return usageError("completion: want bash or fish, got %q", c.Args().First())
			}
			return nil
		},
	}
}
