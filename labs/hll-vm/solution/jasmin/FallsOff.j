; Mine, broken on purpose: the method ends without a return instruction.
; expect: Falling off the end of the code
.class public FallsOff
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 1
    .limit locals 1
    iconst_1
    pop
.end method
