package app

import "github.com/spf13/cobra"

func (c *cli) usersCommand() *cobra.Command {
	return &cobra.Command{Use: "users", Short: "Operator commands on users", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
}
